"""One exception class per API error `code`, and the client's own failures.

The API answers every error as `{"error": {"code", "message", "details"}}`; `APIError.from_response`
turns that into the class registered for the code (an unknown code still gives an `APIError`, so
a newer server never breaks an older client)."""

from __future__ import annotations

from typing import Any, ClassVar


class PromptqClientError(Exception):
    """Anything the client raises. `code` is the API's code, or one of the client's own
    (`connection_error`, `missing_key`, `wait_timeout`)."""

    code: ClassVar[str] = "client_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def one_line(self) -> str:
        """`code: message` on one line, as the CLI prints it."""
        return f"{self.code}: {' '.join(self.message.split())}"


class APIConnectionError(PromptqClientError):
    """The API could not be reached, or the connection broke before an answer (after the
    retries the client allows)."""

    code = "connection_error"


class MissingApiKey(PromptqClientError):
    code = "missing_key"


class WaitTimeout(PromptqClientError):
    """`wait` reached its deadline before the job (or batch) was final; `last` is what was
    seen last."""

    code = "wait_timeout"

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


_BY_CODE: dict[str, type[APIError]] = {}


class APIError(PromptqClientError):
    """An error answer of the API: HTTP `status`, the API's `code`, `message` and `details`;
    `retry_after` is the `Retry-After` header in seconds, when the API sent one."""

    code = "error"

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        # An instance's code is what the server said, even for a subclass found by it.
        self.code = code  # type: ignore[misc]
        self.details = details
        self.retry_after = retry_after

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _BY_CODE[cls.code] = cls

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, {self.message!r})"

    @staticmethod
    def build(
        status: int,
        body: Any,
        retry_after: float | None = None,
    ) -> APIError:
        """The exception for an error answer; a body that is not promptq's error shape (a proxy's
        page, say) gives `http_<status>` with the start of the text as the message."""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            code = error["code"]
            message = str(error.get("message") or code)
            details = error.get("details")
        else:
            code = f"http_{status}"
            message = (body if isinstance(body, str) else repr(body))[:200] or f"HTTP {status}"
            details = None
        cls = _BY_CODE.get(code, APIError)
        return cls(status, code, message, details, retry_after)


class InvalidJson(APIError):
    code = "invalid_json"


class Unauthorized(APIError):
    code = "unauthorized"


class Forbidden(APIError):
    code = "forbidden"


class NotFound(APIError):
    code = "not_found"


class MethodNotAllowed(APIError):
    code = "method_not_allowed"


class Conflict(APIError):
    """Every 409."""


class IdempotencyConflict(Conflict):
    """An Idempotency-Key reused with another body; `details["job_id"]` is the first job."""

    code = "idempotency_conflict"


class JobNotCancellable(Conflict):
    code = "job_not_cancellable"


class BatchNotCancellable(Conflict):
    code = "batch_not_cancellable"


class AlreadyExists(Conflict):
    code = "already_exists"


class LimitReached(Conflict):
    code = "limit_reached"


class DeliveryInProgress(Conflict):
    code = "delivery_in_progress"


class WebhookDisabled(Conflict):
    code = "webhook_disabled"


class JobNotStreamed(Conflict):
    """The job runs without relaying its tokens: it was not submitted with stream=True."""

    code = "job_not_streamed"


class PayloadTooLarge(APIError):
    code = "payload_too_large"


class UnsupportedMediaType(APIError):
    code = "unsupported_media_type"


class RequestValidationError(APIError):
    """422 `validation_error`: `details` is a list of `{field, problem}`."""

    code = "validation_error"


class UrlNotAllowed(RequestValidationError):
    code = "url_not_allowed"


class SemanticCacheUnavailable(RequestValidationError):
    """cache "semantic" sent to an installation without promptq[semantic]."""

    code = "semantic_cache_unavailable"


class InputRejected(RequestValidationError):
    """Prompt-injection screening refused the job (`details` has the score and rules)."""

    code = "input_rejected"


class PiiRestoreUnavailable(RequestValidationError):
    """Restoring scrubbed PII was asked for, but the operator set no PII_VAULT_KEY."""

    code = "pii_restore_unavailable"


class UnknownModel(APIError):
    code = "unknown_model"


class UnknownRoutingPolicy(UnknownModel):
    code = "unknown_routing_policy"


class NoModelFits(UnknownModel):
    """No candidate of the `model: "auto"` routing policy fits the request."""

    code = "no_model_fits"


class RetryLater(APIError):
    """Refusals that carry `Retry-After` (429 and 503): nothing was written, so sending the
    same request again later is safe. The client retries these itself, within its limits."""


class RateLimited(RetryLater):
    code = "rate_limited"


class BudgetExceeded(RetryLater):
    code = "budget_exceeded"


class QueueFull(RetryLater):
    code = "queue_full"


class DatabaseUnavailable(RetryLater):
    code = "database_unavailable"


class BrokerUnavailable(RetryLater):
    code = "broker_unavailable"


class NotReady(RetryLater):
    code = "not_ready"


class InternalError(APIError):
    code = "internal_error"
