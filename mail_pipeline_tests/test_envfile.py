"""`.env` under the one rule: the environment wins, an empty value counts as unset, and the key
is filled in place on the empty line .env.example leaves."""

from __future__ import annotations

import stat

import pytest

from mail_pipeline import envfile
from mail_pipeline.cli.pipeline import ensure_key
from mail_pipeline.storage import crypto


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("A=1\nFERNET_KEY=\nB=2\n", "A=1\nFERNET_KEY=k\nB=2\n"),
        ("FERNET_KEY=''  # fill me\n", "FERNET_KEY=k\n"),
        ('export FERNET_KEY=""\n', "FERNET_KEY=k\n"),
        ("A=1\n", "A=1\n\n# why\nFERNET_KEY=k\n"),
        ("", "# why\nFERNET_KEY=k\n"),
        # Only the first empty line is filled; a second one stays empty and is ignored.
        ("FERNET_KEY=\nFERNET_KEY=\n", "FERNET_KEY=k\nFERNET_KEY=\n"),
    ],
)
def test_fill_writes_in_place_or_appends_once(tmp_path, before, after):
    path = tmp_path / ".env"
    path.write_text(before)
    envfile.fill(path, "FERNET_KEY", "k", "why")
    assert path.read_text() == after
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_values_ignore_empty_lines_and_the_environment_wins(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text("FERNET_KEY=\nA='from file'\nB=from-file\n")
    assert envfile.values(path) == {"A": "from file", "B": "from-file"}
    monkeypatch.setenv("A", "from-env")
    monkeypatch.setenv("B", "")
    monkeypatch.delenv("FERNET_KEY", raising=False)
    assert envfile.effective("A", path) == "from-env"
    assert envfile.effective("B", path) == "from-file"  # empty in the environment counts as unset
    assert envfile.effective("FERNET_KEY", path) is None


def test_ensure_key_fills_the_example_file_once(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text("# settings\nFERNET_KEY=\nMAIL_PIPELINE_RETENTION_DAYS=30\n")
    monkeypatch.setenv(crypto.KEY_VARIABLE, "")  # what a loader makes of `FERNET_KEY=`
    ensure_key(path)
    first = path.read_text()
    [line] = [line for line in first.splitlines() if line.startswith("FERNET_KEY")]
    key = line.removeprefix("FERNET_KEY=")
    crypto.load_cipher(key)
    monkeypatch.setenv(crypto.KEY_VARIABLE, "")
    ensure_key(path)  # a second start
    assert path.read_text() == first
    assert crypto.load_cipher().decrypt(crypto.load_cipher(key).encrypt(b"x")) == b"x"


def test_ensure_key_leaves_the_file_alone_when_the_environment_has_a_key(tmp_path, monkeypatch):
    path = tmp_path / ".env"
    path.write_text("FERNET_KEY=\n")
    monkeypatch.setenv(crypto.KEY_VARIABLE, crypto.generate_key())
    ensure_key(path)
    assert path.read_text() == "FERNET_KEY=\n"


def test_the_dagster_processes_get_the_whole_environment_by_the_same_rule(tmp_path, monkeypatch):
    from mail_pipeline.cli.processes import child_environment
    from mail_pipeline.settings import Settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "FERNET_KEY=from-file\nMAIL_PIPELINE_SENSOR_INTERVAL=5\nMAIL_PIPELINE_IMAP_RETRY_SECONDS=9\n"
    )
    monkeypatch.setenv("FERNET_KEY", "")
    monkeypatch.delenv("MAIL_PIPELINE_SENSOR_INTERVAL", raising=False)
    monkeypatch.setenv("MAIL_PIPELINE_IMAP_RETRY_SECONDS", "7")
    monkeypatch.setenv("MAIL_PIPELINE_DATA_DIR", "data")
    monkeypatch.setenv("PYTHONPATH", "src")
    monkeypatch.delenv("MAIL_PIPELINE_LOG_LEVEL", raising=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    env = child_environment(
        Settings(), tmp_path / "home", verbose=False, env_file=tmp_path / ".env"
    )
    assert env["FERNET_KEY"] == "from-file"  # empty in the environment: unset
    assert (
        env["MAIL_PIPELINE_SENSOR_INTERVAL"] == "5"
        and env["MAIL_PIPELINE_IMAP_RETRY_SECONDS"] == "7"
    )
    # They run from DAGSTER_HOME: relative paths would point elsewhere there.
    assert env["DAGSTER_HOME"] == str(tmp_path / "home")
    assert env["MAIL_PIPELINE_DATA_DIR"] == str(tmp_path / "data") and env["PYTHONPATH"] == str(
        tmp_path / "src"
    )
    assert "MAIL_PIPELINE_LOG_LEVEL" not in env
    # a leaner run worker
    assert env["MALLOC_ARENA_MAX"] == "2" and env["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert (
        child_environment(Settings(), tmp_path, verbose=False, env_file=tmp_path / ".env")[
            "MALLOC_ARENA_MAX"
        ]
        == "4"
    )
    assert (
        child_environment(Settings(), tmp_path, verbose=True, env_file=tmp_path / ".env")[
            "MAIL_PIPELINE_LOG_LEVEL"
        ]
        == "debug"
    )
