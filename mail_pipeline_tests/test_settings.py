"""Settings: defaults, environment, .env, and the documentation of every variable."""

from __future__ import annotations

import os
from pathlib import Path

from mail_pipeline.settings import environment_variables, get_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in environment_variables():
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.data_dir == Path("data")
    assert settings.retention_days == 30
    assert settings.embedding_model == "all-MiniLM-L6-v2"


def test_environment_wins_over_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "MAIL_PIPELINE_RETENTION_DAYS=7\nMAIL_PIPELINE_DATA_DIR='/srv/mail'\n"
    )
    monkeypatch.delenv("MAIL_PIPELINE_DATA_DIR", raising=False)
    monkeypatch.setenv("MAIL_PIPELINE_RETENTION_DAYS", "14")
    settings = get_settings()
    assert settings.retention_days == 14
    assert settings.data_dir == Path("/srv/mail")


def test_an_empty_value_counts_as_unset_in_the_environment_and_in_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "FERNET_KEY=\nMAIL_PIPELINE_RETENTION_DAYS=7\nMAIL_PIPELINE_UI_PORT=\n"
    )
    monkeypatch.setenv("FERNET_KEY", "from-the-shell")  # .env's empty line does not blank it
    monkeypatch.setenv("MAIL_PIPELINE_RETENTION_DAYS", "")  # empty: .env's value applies
    monkeypatch.setenv("MAIL_PIPELINE_UI_PORT", "")  # empty in both: the default
    settings = get_settings()
    assert os.environ["FERNET_KEY"] == "from-the-shell"
    assert settings.retention_days == 7 and settings.ui_port == 3000


def test_env_example_documents_every_variable():
    documented = (ROOT / ".env.example").read_text()
    missing = [name for name in environment_variables() if f"\n{name}=" not in documented]
    assert not missing
    assert "FERNET_KEY=" in documented and "mail-pipeline key generate" in documented


def test_repo_dagster_yaml_is_the_instance_config_run_writes():
    import yaml

    from mail_pipeline.cli.pipeline import instance_config

    assert yaml.safe_load((ROOT / "dagster.yaml").read_text()) == instance_config(4)
