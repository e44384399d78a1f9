"""SQLAlchemy typed models, one aggregate a file; importing this package registers them all."""

from shared.models.api_key import ApiKey
from shared.models.attempt import JobAttempt
from shared.models.base import Base
from shared.models.job import FINAL_STATUSES, Job, JobStatus, Priority
from shared.models.usage import UsageRecord
from shared.models.user import User

__all__ = [
    "FINAL_STATUSES",
    "ApiKey",
    "Base",
    "Job",
    "JobAttempt",
    "JobStatus",
    "Priority",
    "UsageRecord",
    "User",
]
