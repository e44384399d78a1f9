"""The domain error tree. No HTTP here: api/errors.py maps these to status codes.

PromptqError
├── NotFoundError              the thing does not exist, or is not the caller's
├── AuthenticationError        no key, an unknown key, a revoked or expired key
├── ForbiddenError             the admin API is disabled
├── ValidationError            the request is malformed (details say where)
│   ├── MalformedJsonError     the body is not JSON at all
│   ├── UrlNotAllowedError     a webhook target that is not a public address (SSRF guard)
│   ├── SemanticCacheUnavailableError  cache "semantic" without promptq[semantic] installed
│   └── PiiRestoreUnavailableError  restore_pii with nowhere safe to keep the mapping
├── InputRejectedError         prompt-injection screening refused the prompt
├── UnsupportedMediaTypeError  a body sent as anything but application/json
├── UnknownModelError          the model is not in the catalogue
│   ├── UnknownRoutingPolicyError  `model: "auto"` names a routing policy nobody defined
│   └── NoModelFitsError       no candidate of the routing policy fits the request
├── ConflictError              the request collides with existing state
│   ├── IdempotencyConflictError   an Idempotency-Key reused for a different body
│   ├── JobNotCancellableError     the job already finished
│   ├── AlreadyExistsError         a name that must be unique is taken
│   ├── LimitReachedError          a per-user cap on a kind of thing is reached
│   ├── DeliveryInProgressError    a webhook message is being sent right now
│   ├── WebhookDisabledError       the endpoint is disabled
│   └── JobNotStreamedError        a running job that was not submitted to be streamed
└── RetryLaterError            refused for now; retry after `retry_after_s` seconds
    ├── RateLimitedError       the API key's request or token rate limit
    ├── BudgetExceededError    the user's daily or monthly budget
    ├── QueueFullError         the job queues are at their ceiling
    ├── DatabaseUnavailableError   PostgreSQL cannot be reached right now
    └── BrokerUnavailableError     Redis (broker and shared counters) cannot be reached
"""

from __future__ import annotations

from typing import Any


class PromptqError(Exception):
    code = "error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(PromptqError):
    code = "not_found"


class AuthenticationError(PromptqError):
    code = "unauthorized"


class ForbiddenError(PromptqError):
    code = "forbidden"


class ValidationError(PromptqError):
    code = "validation_error"


class MalformedJsonError(ValidationError):
    code = "invalid_json"


class UrlNotAllowedError(ValidationError):
    """A webhook or callback URL whose host is (or resolves to) an address promptq must not
    call: loopback, private, link-local, multicast, reserved, or an IPv6 form of those."""

    code = "url_not_allowed"


class SemanticCacheUnavailableError(ValidationError):
    """cache "semantic" asked of an installation without its embedding model."""

    code = "semantic_cache_unavailable"


class PiiRestoreUnavailableError(ValidationError):
    """restore_pii was asked for, but the original prompt may not be kept and the operator set
    no PII_VAULT_KEY to seal the placeholder mapping with."""

    code = "pii_restore_unavailable"


class InputRejectedError(PromptqError):
    """Prompt-injection screening scored the prompt at or past the threshold, and the job (or
    its owner) asked for such prompts to be refused."""

    code = "input_rejected"


class UnsupportedMediaTypeError(PromptqError):
    """The request has a body, but not as `Content-Type: application/json`."""

    code = "unsupported_media_type"


class UnknownModelError(PromptqError):
    code = "unknown_model"


class UnknownRoutingPolicyError(UnknownModelError):
    code = "unknown_routing_policy"


class NoModelFitsError(UnknownModelError):
    code = "no_model_fits"


class ConflictError(PromptqError):
    code = "conflict"


class IdempotencyConflictError(ConflictError):
    """An Idempotency-Key was reused with a different request body."""

    code = "idempotency_conflict"


class JobNotCancellableError(ConflictError):
    """The job already reached a final state."""

    code = "job_not_cancellable"


class BatchNotCancellableError(ConflictError):
    """The batch is already settled (completed, failed, cancelled or expired)."""

    code = "batch_not_cancellable"


class AlreadyExistsError(ConflictError):
    """Something whose name must be unique exists already under that name."""

    code = "already_exists"


class LimitReachedError(ConflictError):
    """The user already has as many of these as they may."""

    code = "limit_reached"


class DeliveryInProgressError(ConflictError):
    """A webhook message is being delivered; it cannot be retried until that attempt ends."""

    code = "delivery_in_progress"


class WebhookDisabledError(ConflictError):
    """The webhook endpoint is disabled (by its owner, a 410, or days of failures)."""

    code = "webhook_disabled"


class JobNotStreamedError(ConflictError):
    """The job runs without streaming its tokens (it was not submitted with "stream": true)."""

    code = "job_not_streamed"


class RetryLaterError(PromptqError):
    """Refused for now; the same request may succeed after `retry_after_s` seconds."""

    code = "retry_later"

    def __init__(self, message: str, details: Any = None, *, retry_after_s: int) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s


class RateLimitedError(RetryLaterError):
    """The API key sent more requests or estimated tokens this minute than it may."""

    code = "rate_limited"


class BudgetExceededError(RetryLaterError):
    """Admitting the work would take the user past a daily or monthly budget."""

    code = "budget_exceeded"


class QueueFullError(RetryLaterError):
    """The job queues hold as many jobs as the operator allows; new work must wait."""

    code = "queue_full"


class DatabaseUnavailableError(RetryLaterError):
    """PostgreSQL refused or dropped the connection (a restart, a failover): nothing was
    written, and the same request can be sent again shortly."""

    code = "database_unavailable"


class BrokerUnavailableError(RetryLaterError):
    """Redis, which holds the queues and the shared rate-limit counters, cannot be reached: the
    request is refused rather than admitted without its limits."""

    code = "broker_unavailable"
