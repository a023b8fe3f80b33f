"""Running the gateway: the customer's page (uvicorn) and the reader of replies, in one process.

``running_gateway`` is what `make up`, `make demo` and `complaints gateway` (the docker-compose service)
start: it connects to Temporal (through the codec: the customer's words are personal data) and to the log
(the application role), serves the page on COMPLAINTS_PAGE_LISTEN, and files replies from COMPLAINTS_INBOUND
(a Maildir or IMAP folder, polled; or ``smtp://host:port``, an inbound SMTP route it listens on).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from temporalio.client import Client

from codec.converter import connect_temporal
from customer.gateway import Gateway
from customer.inbound import Receiver, start_inbound_route
from customer.mailboxes import Inbox, inbox_from
from customer.page import Page, create_app
from eventlog import PostgresEventStore
from eventlog.connect import create_pool
from eventlog.keys import CustomerKeyring, master_key
from identity.tokens import IssuerKey
from logs import get_logger
from settings import GATEWAY_KEY_ENV, GATEWAY_KEY_INLINE_ENV, MailSettings, PageSettings, Settings

log = get_logger(__name__)


@dataclass
class RunningGateway:
    gateway: Gateway
    receiver: Receiver
    inbox: Inbox | None
    page_address: str
    inbound_address: str | None = None


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return text or "127.0.0.1", default_port
    return host.strip("[]"), int(port)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, page: PageSettings | None = None, mail: MailSettings | None = None,
                          client: Client | None = None) -> AsyncIterator[RunningGateway]:
    """Serve the page and read replies until the context exits; everything started here is stopped here."""
    import uvicorn

    page = page or PageSettings()
    mail = mail or MailSettings()
    if page.gateway_key:
        issuer = IssuerKey.from_json(page.gateway_key)
    elif page.gateway_key_file:
        issuer = IssuerKey.from_file(page.gateway_key_file)
    else:
        raise SystemExit(f"{GATEWAY_KEY_ENV} (or {GATEWAY_KEY_INLINE_ENV}) is not set: the gateway's issuer key, "
                         "which the workers trust for the customer role only (`complaints token gateway-key`)")
    link_key = page.link_key_bytes()
    pool = await create_pool(settings.require_database(), max_size=4)
    watcher: asyncio.Task[None] | None = None
    route = None
    stop = asyncio.Event()
    try:
        client = client or await connect_temporal(settings.temporal_address, settings.temporal_namespace)
        gateway = Gateway(client, PostgresEventStore(pool), CustomerKeyring(pool, master_key()), issuer)
        receiver = Receiver(gateway, mail.reply_key_bytes(), mail.mail_domain)
        secure = bool(page.page_url and page.page_url.startswith("https://"))
        app = create_app(Page(gateway, link_key, secure_cookies=secure))
        host, port = _host_port(page.listen, 8090)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
                                limit_concurrency=64, timeout_keep_alive=5, server_header=False)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(), name="customer-page")
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it (a port taken, say)
                raise SystemExit(f"the customer page could not listen on {host}:{port}")
            await asyncio.sleep(0.05)
        if port == 0:  # the OS chose one
            port = int(server.servers[0].sockets[0].getsockname()[1])
        inbox: Inbox | None = None
        inbound_address = None
        if page.inbound and page.inbound.startswith("smtp://"):
            where = urlsplit(page.inbound)
            route = start_inbound_route(receiver, where.hostname or "0.0.0.0", where.port or 25,
                                        hostname=mail.mail_domain)
            inbound_address = f"{route.hostname}:{route.port}"
        elif page.inbound:
            inbox = inbox_from(page.inbound, page.imap_password)
            watcher = asyncio.create_task(receiver.watch(inbox, page.poll_seconds, stop), name="replies")
        log.info("customer gateway started", page=f"{host}:{port}", inbound=(page.inbound or "none").split(":")[0])
        try:
            yield RunningGateway(gateway, receiver, inbox, f"{host}:{port}", inbound_address)
        finally:
            stop.set()
            server.should_exit = True
            await asyncio.shield(serving)
    finally:
        stop.set()
        if watcher is not None:
            await asyncio.shield(watcher)
        if route is not None:
            route.stop()
        await pool.close()
        log.info("customer gateway stopped")
