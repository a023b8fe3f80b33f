"""Where things are: read from the environment, with the embedded stack's defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

TASK_QUEUE = "complaints"
WORKFLOW_ID_PREFIX = "complaint-"


def workflow_id(complaint_id: str) -> str:
    """Workflow ID of a complaint: ``complaint-<complaint_id>``."""
    return f"{WORKFLOW_ID_PREFIX}{complaint_id}"


def complaint_id_of(workflow_id: str) -> str | None:
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX) if workflow_id.startswith(WORKFLOW_ID_PREFIX) else None


@dataclass(frozen=True)
class Settings:
    """TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, DATABASE_URL (the application role: INSERT and SELECT),
    DATABASE_ADMIN_URL (the schema owner: migrations; optional)."""

    temporal_address: str = field(default_factory=lambda: os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"))
    temporal_namespace: str = field(default_factory=lambda: os.environ.get("TEMPORAL_NAMESPACE", "default"))
    task_queue: str = field(default_factory=lambda: os.environ.get("COMPLAINTS_TASK_QUEUE", TASK_QUEUE))
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL"))
    database_admin_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_ADMIN_URL"))
    #: Workflows a worker keeps in memory between tasks. Complaints wait days between human steps, so the
    #: hot set is small; 500 keeps a worker with 1,000 open complaints under 300 MB (docs/benchmarks.md).
    workflow_cache: int = field(default_factory=lambda: _count("COMPLAINTS_WORKFLOW_CACHE", 500))

    def require_database(self) -> str:
        if not self.database_url:
            raise SystemExit("DATABASE_URL is not set: run `make up` and copy its export line, or set it yourself.")
        return self.database_url


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise SystemExit(f"{name} must be a whole number (0 or more), not {raw!r}")
    return int(raw)
