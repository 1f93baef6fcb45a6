"""The docker/ stack without docker (no daemon runs here): its files are checked against each
other and against the repository, then the very commands, workspace and instance config of its
services run as local processes against a real PostgreSQL."""

from __future__ import annotations

import os
import posixpath
import re
import shlex
import signal
import subprocess
import sys
import tomllib
import uuid
from contextlib import closing
from pathlib import Path

import psycopg2
import pytest
import requests
import yaml

from mail_pipeline.storage import crypto
from mail_pipeline_tests.dagster_process import wait_until
from mail_pipeline_tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
APP_SERVICES = ("code", "webserver", "daemon", "search", "watcher")
# Started only with `--profile scaleout` (the broker and the Celery workers) or `--profile seaweedfs`.
PROFILE_SERVICES = {"redis": "scaleout", "worker": "scaleout", "seaweedfs": "seaweedfs"}
CONTAINER_WORKSPACE = "/opt/mail_pipeline/docker/workspace.yaml"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def instance_config() -> dict:
    return yaml.safe_load((DOCKER / "dagster.yaml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comment lines dropped and continuations joined."""
    lines = [
        line
        for line in (DOCKER / "Dockerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def copied_files() -> dict[str, Path]:
    """Container path -> source in the build context, for every COPY of the Dockerfile."""
    workdir, env, copies = "/", {}, {}
    for instruction, args in dockerfile():
        if instruction == "ENV":
            env.update(token.split("=", 1) for token in shlex.split(args))
        elif instruction == "WORKDIR":
            workdir = posixpath.join(workdir, args.strip())
        elif instruction == "COPY":
            *sources, dest = [t for t in shlex.split(args) if not t.startswith("--")]
            dest = posixpath.normpath(
                posixpath.join(workdir, re.sub(r"\$\{?(\w+)\}?", lambda m: env[m[1]], dest))
            )
            into_dir = len(sources) > 1 or args.rstrip().endswith("/")
            for source in sources:
                copies[posixpath.join(dest, posixpath.basename(source)) if into_dir else dest] = (
                    ROOT / source
                )
    return copies


def referenced_variables(value) -> set[str]:
    """Variables a compose value expands ($VAR, $$VAR, ${VAR}) or a dagster.yaml reads ({env: VAR})."""
    if isinstance(value, dict):
        found = {value["env"]} if set(value) == {"env"} else set()
        return found.union(*(referenced_variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(referenced_variables(v) for v in value))
    return (
        set(re.findall(r"\$\$?\{?([A-Z_][A-Z0-9_]*)", value)) if isinstance(value, str) else set()
    )


def documented_variables() -> set[str]:
    return set(
        re.findall(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = compose()["services"]
    assert set(services) == {"postgres", *APP_SERVICES, *PROFILE_SERVICES}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency]
    for name in APP_SERVICES:
        assert "mail-data:/data" in services[name]["volumes"]
        assert services[name]["environment"]["MAIL_PIPELINE_DATA_DIR"] == "/data"
    assert (
        set(services["webserver"]["depends_on"])
        == set(services["daemon"]["depends_on"])
        == {"postgres", "code"}
    )


def test_the_search_service_is_published_on_loopback_only():
    search = compose()["services"]["search"]
    command = search["command"]
    assert (
        command[:2] == ["mail-pipeline", "serve"] and command[command.index("--port") + 1] == "8765"
    )
    assert search["ports"] == ["${MAIL_PIPELINE_BIND:-127.0.0.1}:8765:8765"]
    assert "/api/health" in " ".join(search["healthcheck"]["test"])


def test_the_scaleout_profile_runs_workers_that_scale_on_the_broker():
    services = compose()["services"]
    for name, profile in PROFILE_SERVICES.items():
        assert services[name]["profiles"] == [profile], name
    for name in set(services) - set(PROFILE_SERVICES):
        assert "profiles" not in services[name], f"{name} must start without a profile"
    worker = services["worker"]
    # `up --scale worker=N` refuses a fixed container name or a published host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["build"] == services["code"]["build"] and "mail-data:/data" in worker["volumes"]
    assert set(worker["depends_on"]) == {"postgres", "redis"}
    from mail_pipeline.cli.main import build_parser

    program, *args = worker["command"]
    assert program == "mail-pipeline" and build_parser().parse_args(args).group == "worker"
    assert "MAIL_PIPELINE_BROKER_URL" in " ".join(worker["healthcheck"]["test"])


def test_every_file_the_stack_references_exists():
    services = compose()["services"]
    copies = copied_files()
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (DOCKER / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
    for name, service in services.items():
        if name in ("redis", "seaweedfs"):  # images of their own, configured on their command line
            continue
        env_file = (DOCKER / service["env_file"]).resolve()
        # .env itself is the operator's copy of .env.example (docs/deployment.md: cp .env.example .env).
        assert env_file == ROOT / ".env" and (ROOT / ".env.example").is_file(), name
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        workspace = command[command.index("-w") + 1]
        assert (
            workspace == CONTAINER_WORKSPACE and copies[workspace] == DOCKER / "workspace.yaml"
        ), name
    for target, source in copies.items():
        assert source.exists(), f"COPY source {source.relative_to(ROOT)} (for {target}) is missing"


def test_image_is_cpu_only_unprivileged_and_carries_the_instance_config():
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    env = dict(
        token.split("=", 1) for i, args in instructions if i == "ENV" for token in shlex.split(args)
    )
    assert env["HF_HUB_OFFLINE"] == "1" and env["MAIL_PIPELINE_DATA_DIR"] == "/data"
    assert copied_files()[f"{env['DAGSTER_HOME']}/dagster.yaml"] == DOCKER / "dagster.yaml"
    assert ("WORKDIR", "/opt/mail_pipeline") in instructions
    runs = [args for i, args in instructions if i == "RUN"]
    locked = next(n for n, r in enumerate(runs) if "pip install --require-hashes" in r)
    assert (
        "-r requirements.lock" in runs[locked]
        and copied_files()["/opt/mail_pipeline/requirements.lock"] == ROOT / "requirements.lock"
    )
    # PyPI serves only the CUDA build of torch; the lock's CPU build comes from PyTorch's CPU index.
    assert (
        "+cpu"
        in re.search(r"^torch==(\S+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)[1]
    )
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in runs[locked]
    package = next(n for n, r in enumerate(runs) if "pip install --no-deps" in r)
    assert locked < package, "the package goes in after the lock, without resolving anything itself"
    users = [args.strip() for i, args in instructions if i == "USER"]
    assert users == ["mail"]


def test_variables_are_documented_in_env_example():
    read = referenced_variables(compose()) | referenced_variables(instance_config())
    assert {v for v in read if v.startswith("DAGSTER_PG_")} == {
        f"DAGSTER_PG_{s}" for s in ("HOST", "PORT", "USER", "PASSWORD", "DB")
    }
    assert read <= documented_variables(), read - documented_variables()


def test_published_ports_are_loopback_unless_configured():
    published = {
        name: service["ports"]
        for name, service in compose()["services"].items()
        if service.get("ports")
    }
    assert "webserver" in published
    for name, ports in published.items():
        for port in ports:
            # A bare "3000:3000" publishes on every interface; the UI and the search page have no login.
            assert re.fullmatch(r"\$\{MAIL_PIPELINE_BIND:-127\.0\.0\.1\}:\d+:\d+", str(port)), (
                name,
                port,
            )


def test_an_empty_key_stops_the_stack_before_it_starts():
    # .env.example's `FERNET_KEY=` would reach the containers empty; `${VAR:?msg}` makes compose
    # refuse to start, with the message, when the value is unset or empty.
    for name in APP_SERVICES:
        key = compose()["services"][name]["environment"]["FERNET_KEY"]
        assert re.fullmatch(r"\$\{FERNET_KEY:\?[^}]*docs/deployment\.md[^}]*\}", key), (name, key)


def deployment_compose_section() -> str:
    """The compose part of the deployment page (docs/deployment.md), whose commands these run."""
    page = (ROOT / "docs" / "deployment.md").read_text()
    start = page.index("## Docker compose and PostgreSQL")
    return page[start : page.index("\n## ", start + 1)]


def test_readme_docker_commands_name_real_services_and_valid_cli_commands():
    from mail_pipeline.cli.main import build_parser

    commands = [
        line
        for line in deployment_compose_section().splitlines()
        if line.startswith("docker compose")
    ]
    inside = [shlex.split(line.split("#")[0]) for line in commands if " exec " in line]
    assert {tuple(argv[argv.index("mail-pipeline") + 1 :][:2]) for argv in inside} >= {
        ("account", "add"),
        ("search", "invoice overdue"),
        ("demo",),
    }
    for argv in (shlex.split(line.split("#")[0]) for line in commands):
        assert (
            argv[argv.index("-f") + 1] == "docker/docker-compose.yml"
            and argv[argv.index("--env-file") + 1] == ".env"
        )
        if "exec" not in argv:
            continue
        rest = argv[argv.index("exec") + 1 :]
        while rest[0].startswith("-"):
            rest = rest[1:]
        service, program, *args = rest
        assert service == "code" and program == "mail-pipeline", argv
        build_parser().parse_args(args)  # exits (fails the test) on a command the CLI does not have


def test_readme_key_command_fills_the_example_env_with_a_valid_key(tmp_path):
    [line] = [
        line
        for line in deployment_compose_section().splitlines()
        if line.startswith("sed -i") and "FERNET_KEY" in line
    ]
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    subprocess.run(["bash", "-c", line], cwd=tmp_path, check=True, timeout=30)
    keys = [k for k in (tmp_path / ".env").read_text().splitlines() if k.startswith("FERNET_KEY=")]
    assert len(keys) == 1
    crypto.load_cipher(keys[0].removeprefix("FERNET_KEY="))


def test_instance_config_is_the_root_one_on_postgres():
    docker, root = instance_config(), yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert docker["concurrency"] == root["concurrency"]
    assert docker["run_retries"] == root["run_retries"]
    assert docker["telemetry"] == {"enabled": False}
    assert docker["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert docker["run_launcher"] == root["run_launcher"]
    assert docker["run_launcher"]["class"] == "LivenessRunLauncher"
    assert (
        docker["run_monitoring"] == root["run_monitoring"] and docker["run_monitoring"]["enabled"]
    )


def test_workspace_points_at_the_code_service():
    services = compose()["services"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    [entry] = yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"]
    server = entry["grpc_server"]
    code = services["code"]["command"]
    assert server["host"] == "code" and str(server["port"]) == code[code.index("-p") + 1]
    assert server["location_name"] == pyproject["code_location_name"]
    assert code[code.index("-m") + 1] == pyproject["module_name"]


# --- the stack's commands, run here -------------------------------------------------------------

LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename
      ... on PythonError { message }
      ... on RepositoryLocation { repositories { name assetNodes { assetKey { path } } } } } } } } }"""
DAEMONS_QUERY = (
    "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
)


def localize(argv: list[str], replacements: dict[str, str]) -> list[str]:
    """A compose command as it runs here: this venv's executables, local hosts, ports and paths."""
    program, *args = argv
    executable = (
        Path(sys.executable) if program == "python" else Path(sys.executable).with_name(program)
    )
    return [str(executable), *(replacements.get(token, token) for token in args)]


class Processes:
    """The stack's long-running services as local processes, each in its own process group."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd, self.running, self.logs_open = env, cwd, {}, []

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.cwd / f"{name}.log").open("wb")
        self.logs_open.append(log)
        self.running[name] = subprocess.Popen(
            argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check(self, argv: list[str]) -> subprocess.CompletedProcess:
        """A healthcheck command, run once."""
        return subprocess.run(
            argv, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=60
        )

    def assert_running(self) -> None:
        exited = {name: p.returncode for name, p in self.running.items() if p.poll() is not None}
        assert not exited, f"exited early: {exited}"

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}.log ---\n{(self.cwd / f'{name}.log').read_text(errors='replace')[-3000:]}"
            for name in self.running
        )

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in self.logs_open:
            log.close()


def local_stack(tmp_path: Path, postgres, database: str) -> tuple[Processes, dict[str, str]]:
    """docker/dagster.yaml as DAGSTER_HOME and docker/workspace.yaml pointed at a local code port;
    the replacements turn the compose commands into local ones."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((DOCKER / "dagster.yaml").read_text())
    code_port, ui_port = free_port(), free_port()
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_port)
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FERNET_KEY": crypto.generate_key(),
        "MAIL_PIPELINE_DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_PG_DB": database,
    }
    replacements = {
        "0.0.0.0": "127.0.0.1",
        "4000": str(code_port),
        "3000": str(ui_port),
        "8765": str(free_port()),
        CONTAINER_WORKSPACE: str(tmp_path / "workspace.yaml"),
    }
    return Processes(env, tmp_path), replacements


@pytest.fixture
def stack_database(postgres) -> str:
    """A database of its own on the session's PostgreSQL, as the postgres service's DAGSTER_PG_DB."""
    name = f"mp_docker_{uuid.uuid4().hex[:8]}"
    with closing(
        psycopg2.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres")
    ) as con:
        con.autocommit = True
        with con.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
    return name


def graphql(port: int, query: str) -> dict:
    try:
        return (
            requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10)
            .json()
            .get("data")
            or {}
        )
    except (requests.ConnectionError, ValueError):
        return {}


def loaded_location(port: int) -> dict | None:
    workspace = graphql(port, LOCATION_QUERY).get("workspaceOrError") or {}
    entries = {e["name"]: e for e in workspace.get("locationEntries", [])}
    entry = entries.get("mail_pipeline")
    return entry if entry and entry["loadStatus"] == "LOADED" else None


def healthy_daemons(port: int) -> set[str]:
    health = (graphql(port, DAEMONS_QUERY).get("instance") or {}).get("daemonHealth") or {}
    return {d["daemonType"] for d in health.get("allDaemonStatuses", []) if d["healthy"]}


@pytest.mark.integration
@pytest.mark.e2e
def test_stack_commands_serve_the_code_location_over_grpc_on_postgres(
    postgres, stack_database, tmp_path
):
    services = compose()["services"]
    processes, local = local_stack(tmp_path, postgres, stack_database)
    ui_port = int(local["3000"])

    def healthcheck(service: str) -> subprocess.CompletedProcess:
        test = [
            token.replace(":3000/", f":{ui_port}/").replace(":8765/", f":{local['8765']}/")
            for token in services[service]["healthcheck"]["test"][1:]
        ]
        return processes.check(localize(test, local))

    try:
        processes.start("code", localize(services["code"]["command"], local))
        wait_for_port(int(local["4000"]), timeout=60)
        wait_until(lambda: healthcheck("code").returncode == 0, 60, "the code server's healthcheck")
        # depends_on: the code server is healthy before the webserver and the daemon start.
        processes.start("webserver", localize(services["webserver"]["command"], local))
        processes.start("daemon", localize(services["daemon"]["command"], local))
        processes.start("search", localize(services["search"]["command"], local))

        entry = wait_until(
            lambda: processes.assert_running() or loaded_location(ui_port),
            60,
            "the code location to load",
        )
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        assets = {
            "/".join(n["assetKey"]["path"])
            for r in location["repositories"]
            for n in r["assetNodes"]
        }
        assert {"raw_messages", "emails", "email_chunks", "email_embeddings", "retention"} <= assets

        wait_until(
            lambda: (
                processes.assert_running() or {"SENSOR", "SCHEDULER"} <= healthy_daemons(ui_port)
            ),
            60,
            "sensor and scheduler daemon heartbeats",
        )
        wait_until(
            lambda: processes.assert_running() or healthcheck("search").returncode == 0,
            120,
            "the search service's healthcheck",
        )
        for service in ("webserver", "daemon", "search"):
            done = healthcheck(service)
            assert done.returncode == 0, (service, done.stdout, done.stderr)

        # The history is in PostgreSQL, not in SQLite under DAGSTER_HOME.
        with (
            closing(
                psycopg2.connect(
                    host="127.0.0.1", port=postgres.port, user="postgres", dbname=stack_database
                )
            ) as con,
            con.cursor() as cursor,
        ):
            cursor.execute("SELECT count(*) FROM daemon_heartbeats")
            assert cursor.fetchone()[0] > 0
        assert not list((tmp_path / "dagster_home").rglob("*.db"))
    finally:
        processes.stop()
        print(processes.logs())  # pytest shows it when the test fails
