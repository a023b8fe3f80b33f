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
    local_appends: bool = field(default_factory=lambda: _flag("COMPLAINTS_LOCAL_APPENDS"))
    refused_run_ttl_seconds: int = field(default_factory=lambda: _count("COMPLAINTS_REFUSED_RUN_TTL", 60))

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


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name} must be a whole number (0 or more), not {raw!r}")
    return int(raw)


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise SystemExit(f"{name} must be 1 or 0, not {raw!r}")
    return raw in ("1", "true", "yes")
