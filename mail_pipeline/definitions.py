"""The one Definitions object of the code location (workspace.yaml loads this module)."""

import os

from dagster import Definitions

from mail_pipeline import logs
from mail_pipeline.defs.assets import build_mail_assets
from mail_pipeline.defs.assets.contacts import contacts
from mail_pipeline.defs.assets.digest import build_daily_digest
from mail_pipeline.defs.assets.retention import retention
from mail_pipeline.defs.checks import build_checks
from mail_pipeline.defs.executors import run_executor
from mail_pipeline.defs.jobs import ingest_job
from mail_pipeline.defs.partitions import mail_partitions_for
from mail_pipeline.defs.people import (
    contacts_job,
    daily_contacts,
    daily_digest_schedule,
    digest_job,
)
from mail_pipeline.defs.resources import build_resources
from mail_pipeline.defs.schedules import daily_catch_up, daily_retention, retention_job
from mail_pipeline.defs.scrub import daily_scrub, scrub_job
from mail_pipeline.defs.sensors import new_mail_sensor_every
from mail_pipeline.settings import Settings, get_settings
from mail_pipeline.storage import crypto
from mail_pipeline.storage.permissions import restrict_umask


def build_definitions(settings: Settings) -> Definitions:
    """Every asset, check, job, sensor and schedule, with partitions and resources from `settings`."""
    partitions = mail_partitions_for(settings.window)
    return Definitions(
        assets=[
            *build_mail_assets(partitions),
            contacts,
            build_daily_digest(partitions),
            retention,
        ],
        asset_checks=build_checks(partitions),
        jobs=[ingest_job, retention_job, scrub_job, digest_job, contacts_job],
        sensors=[
            new_mail_sensor_every(
                settings.sensor_interval_s,
                settings.watch_sensor_interval_s if settings.watch else None,
            )
        ],
        schedules=[
            daily_catch_up,
            daily_retention,
            daily_scrub,
            daily_digest_schedule,
            daily_contacts,
        ],
        resources=build_resources(settings),
        # In one process (one login, one model load per run), or on Celery workers when configured.
        executor=run_executor(settings),
    )


# The code server and the run workers it starts write mail: keep every file they create private.
restrict_umask()
# Fail at load, in the UI's code-location error, with the message naming FERNET_KEY and the
# command that makes one, rather than at the first run that needs a password.
crypto.load_cipher()
for _key in os.environ.get(crypto.KEY_VARIABLE, "").split(","):
    logs.register_secret(_key.strip())

_settings = get_settings()
logs.register_secret(_settings.broker_url.get_secret_value())  # a broker URL may hold a password
defs = build_definitions(_settings)
