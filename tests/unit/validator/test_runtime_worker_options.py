"""The validator's runtime builds the job worker's options from its settings."""

from __future__ import annotations

from gaia.config import ValidatorSettings
from gaia.validator.runtime import worker_options


def test_worker_options_come_from_the_validator_settings():
    settings = ValidatorSettings(workers=4, lease_s=30, backoff_scale=0.01, job_retention_days=3,
                                 shutdown_grace_s=5)
    options = worker_options(settings)
    assert (options.concurrency, options.lease_s, options.backoff_scale) == (4, 30, 0.01)
    assert (options.retention_days, options.shutdown_grace_s) == (3, 5)
    assert options.reap_every_s == 15
