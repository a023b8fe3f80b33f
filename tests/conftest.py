"""Real servers for the suite: one embedded PostgreSQL and one Temporal time-skipping server per session,
a fresh database where a test needs one, a worker per test on its own task queue. Everything started here
is stopped here, also when tests fail."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import logs
from codec import data_converter, default_codec
from codec.encryption import KEYS_ENV
from dev.stack import Postgres, embedded_postgres, scratch_database, venv_bin
from eventlog import PostgresEventStore
from eventlog.connect import create_pool
from eventlog.keys import MASTER_KEY_ENV, new_master_key
from identity.client import CredentialInterceptor
from tests.principals import ISSUER, SuitePrincipals, token
from workflows.attributes import SEARCH_ATTRIBUTES

HISTORIES = Path(__file__).parent / "histories"
EXAMPLES = Path(__file__).parent.parent / "examples"

logs.configure("WARNING", json=True)
os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
# The whole suite runs with payloads encrypted, as production does. The key is fixed (and committed) so that
# the histories kept in tests/histories replay; it protects nothing but test data.
TEST_CODEC_KEY = "ktest0001:2xq8Dkn0U3cOqk0m5c1bB6VhFf1M9sZ7yR4Wq2Ao5Jk="
os.environ.setdefault(KEYS_ENV, TEST_CODEC_KEY)
# The SDK core warns on every worker that the Java time-skipping server lacks a newer capability; the
# suite knows, and the line would otherwise interleave with pytest's output.
Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
    filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")))), error_if_already_set=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# SIGTERM (a CI timeout, `kill`) ends the run as Ctrl-C does, so fixtures still stop what they started.
signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
async def postgres(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Postgres]:
    """A real PostgreSQL (embedded-postgres), with the complaints database migrated."""
    async with embedded_postgres(tmp_path_factory.mktemp("pg") / "data") as pg:
        yield pg


@pytest.fixture
async def database(postgres: Postgres) -> AsyncIterator[Postgres]:
    """A fresh database of its own for a test that needs an empty log."""
    async with scratch_database(postgres, "t") as fresh:
        yield fresh


@pytest.fixture
async def app_pool(database: Postgres) -> AsyncIterator[asyncpg.Pool]:
    """Connections as the application role (INSERT and SELECT only), as the worker uses."""
    pool = await create_pool(database.app_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def sealer_pool(database: Postgres) -> AsyncIterator[asyncpg.Pool]:
    """Connections as the sealer's role (checkpoints only)."""
    pool = await create_pool(database.sealer_url, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def eraser_pool(database: Postgres) -> AsyncIterator[asyncpg.Pool]:
    """Connections as the eraser's role (erasure only, recorded)."""
    pool = await create_pool(database.eraser_url, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def store(app_pool: asyncpg.Pool) -> PostgresEventStore:
    return PostgresEventStore(app_pool)


@pytest.fixture
async def admin(database: Postgres) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection, for tests that play the hostile database administrator."""
    from eventlog.connect import connect

    conn = await connect(database.admin_url)
    yield conn
    await conn.close()


async def register_search_attributes(client: Client) -> None:
    types = {
        SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        SearchAttributeIndexedValueType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={k.name: types[k.indexed_value_type] for k in SEARCH_ATTRIBUTES},
    ))


@pytest.fixture
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (a 3-day timer takes a fraction of a second). One per test: its
    clock is global, and awaiting a closed workflow's result lets it skip to the next timer it knows, even a
    finished workflow's 10-year execution timeout, which would age every later test's complaint by a decade."""
    principals = SuitePrincipals()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_bin("temporal-test-server")), data_converter=data_converter(default_codec()),
        interceptors=[CredentialInterceptor(), principals],
    )
    principals.clock = env.get_current_time  # tokens minted at the server's (skipping) time
    async with env:
        await register_search_attributes(env.client)
        yield env


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal server (``temporal server start-dev``, in memory), for what the time-skipping server
    does differently: speculative workflow tasks for rejected updates, visibility, the temporal CLI."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(venv_bin("temporal")), data_converter=data_converter(default_codec()),
        search_attributes=SEARCH_ATTRIBUTES, dev_server_log_level="error",
        interceptors=[CredentialInterceptor(), SuitePrincipals()],
    )
    async with env:
        yield env


@pytest.fixture
async def dev_worker(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, task_queue: str) -> AsyncIterator[Worker]:
    from worker import build_worker

    async with build_worker(dev_server.client, app_pool, task_queue) as running:
        yield running


@pytest.fixture
def task_queue() -> str:
    return f"complaints-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def worker(time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, task_queue: str) -> AsyncIterator[Worker]:
    """A real worker with the real activities and event store, on the test's own task queue."""
    from worker import build_worker

    async with build_worker(time_skipping.client, app_pool, task_queue) as running:
        yield running


@pytest.fixture
def intake_data() -> Callable[..., dict[str, Any]]:
    """A valid intake as JSON data, with a unique complaint id; keyword arguments override fields."""

    def make(example: str = "late-delivery.json", **changes: Any) -> dict[str, Any]:
        data = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
        data["complaint_id"] = f"T-{uuid.uuid4().hex[:10]}"
        data.update(changes)
        return data

    return make


@contextlib.contextmanager
def env_var(name: str, value: str) -> Any:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old



@pytest.fixture
def token_for() -> Callable[..., str]:
    """A valid token of the suite's trusted issuer: ``token_for("agent", "ana")``; a customer's subject is
    the complaint's customer id."""

    def make(role: str, subject: str = "ana", **options: Any) -> str:
        return token(role, subject, **options)

    return make


@pytest.fixture(scope="session")
def issuer() -> Any:
    """The suite's issuer key (its public key is in COMPLAINTS_TRUSTED_ISSUERS for every worker)."""
    return ISSUER


@pytest.fixture(scope="session", autouse=True)
def mail_relay(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every worker the suite starts delivers what the customer is owed: a real SMTP server (the embedded stack's)
    takes it for the whole session, as a relay would. Tests about mail use ``mail_server``, their own."""
    import secrets

    from dev.mailserver import mail_server as serving

    with serving(tmp_path_factory.mktemp("mail"), port=0) as server, pytest.MonkeyPatch.context() as env:
        for name in ("COMPLAINTS_SMTP_USER", "COMPLAINTS_SMTP_PASSWORD", "COMPLAINTS_MAIL_FROM"):
            env.delenv(name, raising=False)
        for name, value in {"COMPLAINTS_SMTP_HOST": server.host, "COMPLAINTS_SMTP_PORT": str(server.port),
                            "COMPLAINTS_SMTP_STARTTLS": "0", "COMPLAINTS_MAIL_DOMAIN": "complaints.localhost",
                            "COMPLAINTS_REPLY_KEY": secrets.token_urlsafe(32),
                            "COMPLAINTS_MAILDIR": str(server.maildir)}.items():
            env.setenv(name, value)
        yield server


@pytest.fixture
def mail_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The embedded stack's real SMTP server (dev/mailserver.py) on a free port, its Maildir under tmp_path, and
    the environment pointing at it (COMPLAINTS_SMTP_*, _MAIL_*, _REPLY_KEY, _MAILDIR), so that EmailChannel()
    sends there. Yields a dev.mailserver.MailServer: .host, .port, .maildir, .messages() (parsed, oldest first),
    .refuse_next(n), .defer_next(n), .defer_after_storing_next(n)."""
    import secrets

    from dev.mailserver import mail_server as serving

    for name in ("COMPLAINTS_SMTP_USER", "COMPLAINTS_SMTP_PASSWORD", "COMPLAINTS_MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    with serving(tmp_path / "mail", port=0) as server:
        for name, value in {"COMPLAINTS_SMTP_HOST": server.host, "COMPLAINTS_SMTP_PORT": str(server.port),
                            "COMPLAINTS_SMTP_STARTTLS": "0", "COMPLAINTS_MAIL_DOMAIN": "complaints.localhost",
                            "COMPLAINTS_REPLY_KEY": secrets.token_urlsafe(32),
                            "COMPLAINTS_MAILDIR": str(server.maildir)}.items():
            monkeypatch.setenv(name, value)
        yield server
