"""SQLAlchemy typed models, one aggregate a file; importing this package registers them all."""

from shared.models.api_key import ApiKey
from shared.models.attempt import JobAttempt
from shared.models.audit_event import AuditEvent
from shared.models.base import Base, Money
from shared.models.batch import OPEN_BATCH_STATUSES, Batch, BatchOrigin, BatchStatus
from shared.models.budget_alert import BudgetAlert
from shared.models.file import File
from shared.models.job import FINAL_STATUSES, Job, JobStatus, Priority
from shared.models.openai_batch import OpenAIBatch
from shared.models.semantic_cache import SemanticCacheEntry
from shared.models.spend import SpendCounter, TeamSpendCounter
from shared.models.team import Team
from shared.models.usage import UsageRecord
from shared.models.user import User
from shared.models.webhook_endpoint import WebhookEndpoint
from shared.models.webhook_message import (
    AttemptOutcome,
    MessageStatus,
    WebhookAttempt,
    WebhookMessage,
)

__all__ = [
    "FINAL_STATUSES",
    "OPEN_BATCH_STATUSES",
    "ApiKey",
    "AttemptOutcome",
    "AuditEvent",
    "Base",
    "Batch",
    "BatchOrigin",
    "BatchStatus",
    "BudgetAlert",
    "File",
    "Job",
    "JobAttempt",
    "JobStatus",
    "MessageStatus",
    "Money",
    "OpenAIBatch",
    "Priority",
    "SemanticCacheEntry",
    "SpendCounter",
    "Team",
    "TeamSpendCounter",
    "UsageRecord",
    "User",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
]
