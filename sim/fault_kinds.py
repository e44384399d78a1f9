"""The misbehaviours the simulator can inject, named as tests and the CLI spell them."""

from enum import StrEnum


class FaultKind(StrEnum):
    """What a faulty completion call gets instead of a normal answer."""

    RATE_LIMIT = "rate_limit"  # 429 with retry-after and the provider's rate-limit body
    SERVER_ERROR = "server_error"  # 500
    BAD_GATEWAY = "bad_gateway"  # 502 from a proxy in front of the API (an HTML page)
    UNAVAILABLE = "unavailable"  # 503
    # Anthropic's 529 overloaded_error (inside a begun stream: an error event); OpenAI's 503
    OVERLOADED = "overloaded"
    HANG = "hang"  # no answer for SimConfig.hang_s, then the connection is dropped
    DROP = "drop"  # the connection closes without any HTTP answer
    MALFORMED = "malformed"  # 200 whose body is cut short, so it is not JSON (a stream: one event)
    CUT = "cut"  # the connection closes half way through a 200: its body or its stream's events
    SCHEMA_VIOLATION = "schema_violation"  # 200 whose reply text is prose, not the JSON asked for


# Kinds answered with an HTTP error status rather than a (broken) 200 or no answer at all.
ERROR_STATUS_KINDS = frozenset(
    {
        FaultKind.RATE_LIMIT,
        FaultKind.SERVER_ERROR,
        FaultKind.BAD_GATEWAY,
        FaultKind.UNAVAILABLE,
        FaultKind.OVERLOADED,
    }
)
