"""The customer's side for real: a real Temporal server (start-dev), a real PostgreSQL, the embedded stack's
real SMTP server, a worker whose messages link to the page, and the gateway (the page over HTTP, replies read
from the mail server's Maildir) as `make up` runs it."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from customer.serve import RunningGateway, running_gateway
from dev.mailserver import MailServer
from eventlog import PostgresEventStore
from settings import PageSettings, Settings
from tests.principals import GATEWAY
from tests.workflows.driver import Driver
from worker import build_worker

OUT = Path(__file__).resolve().parent.parent.parent / "out" / "customer-page"


@dataclass
class CustomerSide:
    drive: Driver
    gateway: RunningGateway
    mail: MailServer
    link_key: bytes

    @property
    def page_url(self) -> str:
        return f"http://{self.gateway.page_address}"

    async def received(self, cid: str, key: str, timeout: float = 30) -> EmailMessage:
        """The message ``key`` (acknowledgement, apology, explanation, follow_up...) sent for ``cid``."""
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            for message in self.mail.messages():
                if message["X-Complaint-Id"] == cid and f".{key}-" in str(message["Message-ID"]):
                    return message
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {key} message for {cid}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def customer_side(dev_server: WorkflowEnvironment, database: Any, app_pool: asyncpg.Pool,
                        store: PostgresEventStore, task_queue: str, mail_server: MailServer,
                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[CustomerSide]:
    """The gateway on a free port, reading replies from ``mail_server``'s Maildir every 0.2 s, and a worker
    whose messages link to it; the follow-up is asked at once (as in `make demo`)."""
    link_key = secrets.token_urlsafe(32)
    key_file = tmp_path / "gateway.json"
    key_file.write_text(GATEWAY.to_json())
    monkeypatch.setenv("COMPLAINTS_FOLLOW_UP", json.dumps(
        {"after_business_days": 0, "answer_within_business_days": 5, "hour": 0}))
    page = PageSettings(page_url=None, link_key=link_key, listen="127.0.0.1:0", gateway_key_file=str(key_file),
                        inbound=f"maildir:{mail_server.maildir}", poll_seconds=0.2)
    settings = Settings(temporal_address="unused", database_url=database.app_url, database_admin_url=None)
    async with running_gateway(settings, page, client=dev_server.client) as gateway:
        monkeypatch.setenv("COMPLAINTS_PAGE_URL", f"http://{gateway.page_address}")
        monkeypatch.setenv("COMPLAINTS_LINK_KEY", link_key)
        async with build_worker(dev_server.client, app_pool, task_queue):
            yield CustomerSide(Driver(dev_server.client, store, task_queue), gateway, mail_server, link_key.encode())


Data = Callable[..., dict[str, Any]]
