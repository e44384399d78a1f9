"""Why an answer ended, in the one vocabulary a job's result uses whichever provider gave it.

Each provider adapter maps its own words onto these (worker/providers/); the result keeps the
provider's word beside it as `provider_finish_reason`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


def normalize(provider_value: str, table: Mapping[str, FinishReason]) -> FinishReason:
    """promptq's finish reason for a provider's. A value the table does not know (one a newer
    API version added) counts as `stop`: the provider ended the answer and said it was not cut
    short in any way promptq knows of; its own word stays in `provider_finish_reason`."""
    return table.get(provider_value, "stop")
