"""Where things are: read from the environment, with the embedded stack's defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TypedDict

TASK_QUEUE = "complaints"
WORKFLOW_ID_PREFIX = "complaint-"


def workflow_id(complaint_id: str) -> str:
    """Workflow ID of a complaint: ``complaint-<complaint_id>``."""
    return f"{WORKFLOW_ID_PREFIX}{complaint_id}"


def complaint_id_of(workflow_id: str) -> str | None:
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX) if workflow_id.startswith(WORKFLOW_ID_PREFIX) else None


class RunOptionValues(TypedDict):
    """The fields of activities.messages.RunOptions, as the environment sets them."""

    max_history_events: int
    fulfilment_attempts: int
    local_appends: bool
    refused_run_ttl_seconds: int


@dataclass(frozen=True)
class Settings:
    """TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DATABASE_URL (the application role: INSERT and SELECT),
    DATABASE_ADMIN_URL (the schema owner: migrations; optional)."""

    temporal_address: str = field(default_factory=lambda: os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"))
    temporal_namespace: str = field(default_factory=lambda: os.environ.get("TEMPORAL_NAMESPACE", "default"))
    task_queue: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_TASK_QUEUE", TASK_QUEUE))
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL"))
    database_admin_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_ADMIN_URL"))
    #: The roles that seal checkpoints and erase customers: each may call its one function, nothing else.
    database_sealer_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_SEALER_URL"))
    database_eraser_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_ERASER_URL"))
    #: Workflows a worker keeps in memory between tasks. Complaints wait days between human steps, so the
    #: hot set is small; 500 keeps a worker with 1,000 open complaints under 300 MB (docs/benchmarks.md).
    workflow_cache: int = field(default_factory=lambda: _count("COMPLAINTS_WORKFLOW_CACHE", 500))
    #: Whom the workers believe (COMPLAINTS_TRUSTED_ISSUERS: a JSON list of issuers and their JWKS, inline
    #: or @file), see identity/tokens.py. Without any, every decision is refused as Unauthenticated.
    trusted_issuers: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_TRUSTED_ISSUERS", ""))
    #: Development only: accept complaints and decisions that reached Temporal unencrypted.
    allow_plaintext: bool = field(default_factory=lambda: _flag("COMPLAINTS_ALLOW_PLAINTEXT"))
    #: How a complaint's workflow runs (never a caller's to choose): see activities.messages.RunOptions.
    max_history_events: int = field(default_factory=lambda: _count("COMPLAINTS_MAX_HISTORY_EVENTS", 8_000))
    fulfilment_attempts: int = field(default_factory=lambda: _count("COMPLAINTS_FULFILMENT_ATTEMPTS", 10))
    #: Appends as local activities (in the workflow task) with COMPLAINTS_LOCAL_APPENDS=1; activities by default.
    #: Off by default while temporalio 1.35's core can complete a workflow task that carries a query before the
    #: workflow has seen the result of a local activity finished meanwhile (the result then comes with the next
    #: task): such a history does not replay, and the run is stuck once evicted (docs/reliability.md).
    local_appends: bool = field(default_factory=lambda: _flag("COMPLAINTS_LOCAL_APPENDS", default=False))
    refused_run_ttl_seconds: int = field(default_factory=lambda: _count("COMPLAINTS_REFUSED_RUN_TTL", 60))
    #: Where a worker serves its metrics for Prometheus (host:port, at /metrics): the SDK's and ours. Off when
    #: empty.
    metrics_listen: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_METRICS_LISTEN", ""))

    def run_options(self) -> RunOptionValues:
        """The workflow's run options, for activities.messages.RunOptions (which checks their bounds)."""
        return {"max_history_events": self.max_history_events, "fulfilment_attempts": self.fulfilment_attempts,
                "local_appends": self.local_appends, "refused_run_ttl_seconds": self.refused_run_ttl_seconds}

    def require_database(self) -> str:
        if not self.database_url:
            raise SystemExit("DATABASE_URL is not set: run `make up` and copy its export line, or set it yourself.")
        return self.database_url

    def require(self, name: str) -> str:
        """DATABASE_SEALER_URL or DATABASE_ERASER_URL: the role of that one task."""
        value = {"DATABASE_SEALER_URL": self.database_sealer_url,
                 "DATABASE_ERASER_URL": self.database_eraser_url}[name]
        if not value:
            raise SystemExit(f"{name} is not set: this task runs under its own database role "
                             "(`make up` exports it for the embedded stack).")
        return value


#: The embedded stack's mail server (dev/mailserver.py) listens here unless the port is taken.
DEV_SMTP_PORT = 8025
DEFAULT_MAIL_FROM = "Customer care <complaints@complaints.localhost>"
DEFAULT_MAIL_DOMAIN = "complaints.localhost"
REPLY_KEY_ENV = "COMPLAINTS_REPLY_KEY"


@dataclass(frozen=True)
class MailSettings:
    """How messages reach customers (activities/channels.py): an SMTP relay (COMPLAINTS_SMTP_HOST, _PORT,
    _STARTTLS, _USER, _PASSWORD, _TIMEOUT seconds), the sender (COMPLAINTS_MAIL_FROM), the domain of
    Message-IDs and reply addresses (COMPLAINTS_MAIL_DOMAIN), and the key that signs reply addresses
    (COMPLAINTS_REPLY_KEY, required to send; COMPLAINTS_REPLY_TTL_DAYS how long one works). The defaults are
    the embedded stack's mail server. The password and the key never appear in a repr or a log."""

    smtp_host: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_SMTP_HOST", "127.0.0.1"))
    smtp_port: int = field(default_factory=lambda: _count("COMPLAINTS_SMTP_PORT", DEV_SMTP_PORT))
    #: Upgrade with STARTTLS (and verify the relay's certificate) before anything is said; refused if it cannot.
    smtp_starttls: bool = field(default_factory=lambda: _flag("COMPLAINTS_SMTP_STARTTLS"))
    smtp_user: str | None = field(default_factory=lambda: os.environ.get("COMPLAINTS_SMTP_USER") or None)
    smtp_password: str | None = field(default_factory=lambda: os.environ.get("COMPLAINTS_SMTP_PASSWORD") or None,
                                      repr=False)
    #: Seconds for the connection and for each command (a relay that takes longer is retried later).
    smtp_timeout: float = field(default_factory=lambda: _seconds("COMPLAINTS_SMTP_TIMEOUT", 30.0))
    mail_from: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_MAIL_FROM", DEFAULT_MAIL_FROM))
    mail_domain: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_MAIL_DOMAIN", DEFAULT_MAIL_DOMAIN))
    reply_key: str | None = field(default_factory=lambda: os.environ.get(REPLY_KEY_ENV) or None, repr=False)
    reply_ttl_days: int = field(default_factory=lambda: _count("COMPLAINTS_REPLY_TTL_DAYS", 180))

    def reply_key_bytes(self) -> bytes:
        """The reply key (its UTF-8 bytes), or ValueError saying how to make one."""
        if not self.reply_key or len(self.reply_key.encode()) < 16:
            raise ValueError(f"{REPLY_KEY_ENV} is {'too short' if self.reply_key else 'not set'}: at least 16 "
                             "characters, e.g. python -c \"import secrets;print(secrets.token_urlsafe(32))\" "
                             "(`make up` makes one for the embedded stack)")
        return self.reply_key.encode()


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name} must be a whole number (0 or more), not {raw!r}")
    return int(raw)


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise SystemExit(f"{name} must be 1 or 0, not {raw!r}")
    return default if raw == "" else raw in ("1", "true", "yes")


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise SystemExit(f"{name} must be a number of seconds (above 0, under 3600), not {raw!r}")
    return value


PAGE_URL_ENV = "COMPLAINTS_PAGE_URL"
LINK_KEY_ENV = "COMPLAINTS_LINK_KEY"
GATEWAY_KEY_ENV = "COMPLAINTS_GATEWAY_ISSUER_KEY_FILE"
#: The same key given inline (its JSON), where a file is awkward (a container's environment from a secret store).
GATEWAY_KEY_INLINE_ENV = "COMPLAINTS_GATEWAY_ISSUER_KEY"
#: The embedded stack's customer page listens here unless the port is taken.
DEV_PAGE_PORT = 8090


@dataclass(frozen=True)
class PageSettings:
    """The customer's page and replies (customer/): the base URL the messages' links point at
    (COMPLAINTS_PAGE_URL, as the customer's browser reaches it), the key that signs those links
    (COMPLAINTS_LINK_KEY: the workers sign, the page verifies), where the page listens
    (COMPLAINTS_PAGE_LISTEN, host:port), the gateway's own issuer key, which vouches for customers only
    (COMPLAINTS_GATEWAY_ISSUER_KEY_FILE, or the key's JSON in COMPLAINTS_GATEWAY_ISSUER_KEY), and where
    replies are read (COMPLAINTS_INBOUND: ``maildir:/path``, ``imaps://user@host[:port][/FOLDER]`` with
    COMPLAINTS_IMAP_PASSWORD, or ``smtp://host:port`` to listen as the inbound route itself), every
    COMPLAINTS_INBOUND_POLL_SECONDS. Without a page URL and a link key, messages carry no links."""

    page_url: str | None = field(default_factory=lambda: os.environ.get(PAGE_URL_ENV) or None)
    link_key: str | None = field(default_factory=lambda: os.environ.get(LINK_KEY_ENV) or None, repr=False)
    listen: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_PAGE_LISTEN", f"127.0.0.1:{DEV_PAGE_PORT}"))
    gateway_key_file: str | None = field(default_factory=lambda: os.environ.get(GATEWAY_KEY_ENV) or None)
    gateway_key: str | None = field(default_factory=lambda: os.environ.get(GATEWAY_KEY_INLINE_ENV) or None,
                                    repr=False)
    inbound: str | None = field(default_factory=lambda: os.environ.get("COMPLAINTS_INBOUND") or None)
    imap_password: str | None = field(default_factory=lambda: os.environ.get("COMPLAINTS_IMAP_PASSWORD") or None,
                                      repr=False)
    poll_seconds: float = field(default_factory=lambda: _seconds("COMPLAINTS_INBOUND_POLL_SECONDS", 2.0))

    def link_key_bytes(self) -> bytes:
        if not self.link_key or len(self.link_key.encode()) < 16:
            raise ValueError(f"{LINK_KEY_ENV} is {'too short' if self.link_key else 'not set'}: at least 16 "
                             "characters (`make up` makes one for the embedded stack)")
        return self.link_key.encode()

    def links(self) -> tuple[str, bytes] | None:
        """(base URL, link key) when messages should carry links to the page, else None."""
        if not self.page_url:
            return None
        return self.page_url, self.link_key_bytes()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (where a plain connection, as to a test's server, is allowed)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
