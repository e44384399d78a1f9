"""The promptq Python client: submit LLM jobs to a promptq gateway, wait for them or follow their
tokens live, follow batches, read usage, manage webhook endpoints and verify their deliveries.

It speaks HTTP only (requests) and imports nothing of promptq's server.

    from promptq.client import Client, verify_webhook
"""

from promptq.client import errors
from promptq.client.errors import (
    APIConnectionError,
    APIError,
    MissingApiKey,
    NotFound,
    PromptqClientError,
    RateLimited,
    RetryLater,
    Unauthorized,
    WaitTimeout,
)
from promptq.client.models import (
    Attempt,
    Batch,
    BatchCounts,
    BatchResult,
    Delivery,
    FallbackEvent,
    Job,
    ResultEvent,
    RetryEvent,
    StreamEvent,
    TokenEvent,
    UsageReport,
    WebhookEndpoint,
)
from promptq.client.sync import Client
from promptq.client.transport import RetryPolicy
from promptq.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "Attempt",
    "Batch",
    "BatchCounts",
    "BatchResult",
    "Client",
    "Delivery",
    "FallbackEvent",
    "Job",
    "MissingApiKey",
    "NotFound",
    "PromptqClientError",
    "RateLimited",
    "ResultEvent",
    "RetryEvent",
    "RetryLater",
    "RetryPolicy",
    "StreamEvent",
    "TokenEvent",
    "Unauthorized",
    "UsageReport",
    "WaitTimeout",
    "WebhookEndpoint",
    "WebhookVerificationError",
    "errors",
    "verify_webhook",
]
