"""The lease settings stay coherent: a dead worker's permits lapse within a lease."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_short_leases_and_permits_by_default() -> None:
    settings = Settings()
    assert settings.job_lease_s == 30
    assert settings.permit_ttl_s <= settings.job_lease_s


def test_permits_outliving_the_lease_are_refused() -> None:
    with pytest.raises(ValidationError, match="permit_ttl_s must not be longer than job_lease_s"):
        Settings(job_lease_s=10, permit_ttl_s=20)
