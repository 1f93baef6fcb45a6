"""Dagster wiring only: partitions, resources, thin assets, checks, sensors, schedules."""

from mail_pipeline import logs

# Before any asset is declared: the warnings fire when the decorators run.
logs.quiet_library_warnings()
