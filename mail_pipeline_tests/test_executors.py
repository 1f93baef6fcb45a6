"""Which executor the code location's runs get (defs/executors.py): in-process unless
MAIL_PIPELINE_EXECUTOR=celery, and then the broker's URL only by its variable's name."""

from __future__ import annotations

import json

import pytest
from dagster import in_process_executor
from pydantic import ValidationError

from mail_pipeline import cli
from mail_pipeline.defs.executors import celery_config, run_executor
from mail_pipeline.settings import Settings

BROKER = "redis://:broker-password@127.0.0.1:6379/0"


def test_runs_stay_in_process_unless_told():
    assert run_executor(Settings()) is in_process_executor


def test_celery_needs_a_broker(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_EXECUTOR", "celery")
    with pytest.raises(ValidationError, match="needs MAIL_PIPELINE_BROKER_URL"):
        Settings()


def test_the_celery_executor_names_the_broker_by_variable_never_by_value(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_EXECUTOR", "celery")
    monkeypatch.setenv("MAIL_PIPELINE_BROKER_URL", BROKER)
    settings = Settings()
    executor = run_executor(settings)
    assert executor.name == "celery"
    config = celery_config(settings)
    assert config["broker"] == config["backend"] == {"env": "MAIL_PIPELINE_BROKER_URL"}
    assert "broker-password" not in json.dumps(config)
    source = config["config_source"]
    assert source["task_acks_late"] and source["task_reject_on_worker_lost"]
    assert source["broker_transport_options"]["visibility_timeout"] == 3600


def test_rabbitmq_sends_results_back_over_its_own_connection(monkeypatch):
    monkeypatch.setenv("MAIL_PIPELINE_EXECUTOR", "celery")
    monkeypatch.setenv("MAIL_PIPELINE_BROKER_URL", "amqp://guest@127.0.0.1//")
    assert celery_config(Settings())["backend"] == "rpc://"


def test_a_worker_needs_the_celery_executor(capsys):
    assert cli.main(["worker"]) == 2
    assert "mail-pipeline worker needs MAIL_PIPELINE_EXECUTOR=celery" in capsys.readouterr().err


def test_a_worker_runs_at_least_one_step_at_once(monkeypatch, capsys):
    monkeypatch.setenv("MAIL_PIPELINE_EXECUTOR", "celery")
    monkeypatch.setenv("MAIL_PIPELINE_BROKER_URL", BROKER)
    assert cli.main(["worker", "--concurrency", "0"]) == 2
    assert "--concurrency must be 1 or more" in capsys.readouterr().err
