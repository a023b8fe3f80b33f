"""A worker: ComplaintWorkflow and its activities on the ``complaints`` task queue. Wiring only.

Run it with ``python -m worker`` (TEMPORAL_ADDRESS, DATABASE_URL; DATABASE_ADMIN_URL to migrate first).
Any number of workers may run on the same task queue."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

import logs
from activities import messages as msg
from activities.admission import Admission, forget_run
from activities.calendar import compute_deadlines, plan_follow_up
from activities.channels import EmailChannel
from activities.delivery import Delivery
from activities.eventlog import EventLogActivities
from activities.remedies import RemedyCatalogue, RemedyLedger
from codec import connect_temporal, default_codec
from eventlog import PostgresEventStore
from eventlog.connect import create_pool
from eventlog.keys import CustomerKeyring, master_key
from eventlog.migrate import migrate
from identity.tokens import TrustedIssuers
from settings import MailSettings, PageSettings, Settings
from workflows.complaint import ComplaintWorkflow
from workflows.forget import ForgetRefusedRun
from workflows.perimeter import PerimeterInterceptor, sandbox_runner

log = logs.get_logger(__name__)


class _ActivityLogging(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        with logs.ActivityLogContext.bind():
            return await super().execute_activity(input)


class LogContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogging(next)


def build_worker(
    client: Client,
    pool: asyncpg.Pool,
    task_queue: str,
    *,
    remedy_provider: Callable[..., Any] | None = None,
    remedy_catalogue: Callable[..., Any] | None = None,
    regulator_clock: Callable[..., Any] | None = None,
    mail: MailSettings | None = None,
    master: bytes | None = None,
    issuers: TrustedIssuers | None = None,
    run_options: msg.RunOptions | None = None,
    allow_plaintext: bool | None = None,
    **options: Any,
) -> Worker:
    """``remedy_provider`` replaces the default ledger: any activity named ``fulfil_remedy`` that is
    idempotent per (complaint, offer round, option); ``remedy_catalogue`` the quotes (``quote_remedies``);
    ``regulator_clock`` the deadlines (``compute_deadlines``: a test's regulator counting in seconds);
    ``mail`` how messages reach customers (default: the environment's MailSettings).
    ``master`` wraps customer keys (default: COMPLAINTS_MASTER_KEY).
    ``issuers`` (default: COMPLAINTS_TRUSTED_ISSUERS), ``run_options`` and ``allow_plaintext`` (default:
    the environment, see settings.py) are the worker's configuration of the workflow's perimeter."""
    logs.sdk_context_as_fields()
    settings = Settings()
    mailing = mail or MailSettings()
    page = PageSettings()
    store = PostgresEventStore(pool)
    keyring = CustomerKeyring(pool, master or master_key())
    trusted = issuers if issuers is not None else TrustedIssuers.parse(settings.trusted_issuers)
    plaintext = settings.allow_plaintext if allow_plaintext is None else allow_plaintext
    chosen = run_options or msg.RunOptions(**settings.run_options())
    if options.get("max_cached_workflows", settings.workflow_cache) == 0 and chosen.local_appends:
        # A local activity keeps its workflow task open; a worker that caches no workflow evicts it before
        # the activity reports, and the task fails for ever. Without a cache, appends are activities.
        log.warning("no workflow cache: appends run as activities, not local activities")
        chosen = chosen.model_copy(update={"local_appends": False})
    # The built-in catalogue answers quickly: its quote runs beside a local append (msg.RunOptions.local_quotes).
    chosen = chosen.model_copy(update={"local_quotes": chosen.local_appends and remedy_catalogue is None})
    admission = Admission(store, trusted, chosen, allow_plaintext=plaintext)
    # Headers (the callers' tokens) may come encrypted, as the temporal CLI with a codec sends them and as
    # the project's clients do: the worker opens them with the codec before the doors read them.
    config = client.config()  # a copy
    config["header_codec_behavior"] = HeaderCodecBehavior.CODEC
    client = Client(**config)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ComplaintWorkflow, ForgetRefusedRun],
        activities=[
            admission.admit,
            forget_run,
            EventLogActivities(store, keyring).append_events,
            regulator_clock or compute_deadlines,
            plan_follow_up,
            remedy_catalogue or RemedyCatalogue(pool, keyring).quote_remedies,
            remedy_provider or RemedyLedger(pool, keyring).fulfil_remedy,
            Delivery(store, keyring, EmailChannel(mailing), mailing.mail_domain, page.links()).deliver_message,
        ],
        interceptors=[LogContextInterceptor(), PerimeterInterceptor(trusted, allow_plaintext=plaintext),
                      *filter(None, [tracing_interceptor()])],
        workflow_runner=sandbox_runner(),
        **options,
    )


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, client: Client | None = None, **options: Any) -> AsyncIterator[Worker]:
    """Migrate (when an admin URL is given), connect, and run a worker until the context exits."""
    if settings.database_admin_url:
        role = _user_of(settings.require_database())
        applied = await migrate(settings.database_admin_url, app_role=role)
        if applied:
            log.info("event log migrated", applied=applied)
    if client is None and default_codec() is None and not settings.allow_plaintext:
        raise SystemExit("COMPLAINTS_CODEC_KEYS is not set: a worker without the codec cannot tell encrypted input "
                         "from plaintext personal data (set COMPLAINTS_ALLOW_PLAINTEXT=1 for development only)")
    pool = await create_pool(settings.require_database())
    try:
        client = client or await connect_temporal(settings.temporal_address, settings.temporal_namespace,
                                                  runtime=_process_runtime(settings.metrics_listen))
        worker = build_worker(client, pool, settings.task_queue,
                              **{"max_cached_workflows": settings.workflow_cache, **options})
        async with worker:
            log.info("worker started", task_queue=settings.task_queue, temporal=settings.temporal_address,
                     metrics=f"http://{settings.metrics_listen}/metrics" if settings.metrics_listen else None)
            yield worker
        flush_traces()
        log.info("worker stopped")
    finally:
        await pool.close()


@functools.cache
def _tracer_provider() -> Any:
    """The worker process's OpenTelemetry tracer provider, exporting OTLP over HTTP where the standard
    variables say (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_SERVICE_NAME...).
    One per process: the SDK's BatchSpanProcessor sends in the background."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                      "complaints-worker")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracing_interceptor() -> Interceptor | None:
    """OpenTelemetry traces through the SDK's TracingInterceptor (a span for each workflow run, update,
    query and activity, with the trace carried in Temporal's headers), when an exporter is configured; None
    otherwise. Spans name types and ids, never payloads."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    from temporalio.contrib.opentelemetry import TracingInterceptor

    # A complaint is usually started by a backend that traces nothing: its runs get spans of their own anyway.
    return TracingInterceptor(_tracer_provider().get_tracer("complaints"), always_create_workflow_spans=True)


def flush_traces() -> None:
    """Send the spans still buffered (a worker stopping; a test reading what was exported)."""
    if _tracer_provider.cache_info().currsize:
        _tracer_provider().force_flush()


#: The lag of a consumer of the log (eventlog/subscriptions.py), in events, by consumer.
CONSUMER_LAG = "complaints_consumer_lag"


@functools.cache
def _process_runtime(listen: str) -> Runtime | None:
    return metrics_runtime(listen)


def consumer_lag(name: str, listen: str | None = None) -> Callable[[int], None] | None:
    """A consumer's lag gauge on this process's metrics endpoint (``listen``, default COMPLAINTS_METRICS_LISTEN),
    for the processes that run consumers (`complaints report --follow`, `complaints webhook run`); None when
    metrics are off."""
    runtime = _process_runtime(listen if listen is not None else Settings().metrics_listen)
    if runtime is None:
        return None
    gauge = runtime.metric_meter.create_gauge(CONSUMER_LAG, "events a consumer of the log has not handled yet")
    return gauge.with_additional_attributes({"consumer": name}).set


def metrics_runtime(listen: str) -> Runtime | None:
    """A runtime serving the worker's metrics for Prometheus on ``listen`` (host:port, at /metrics): the SDK's
    own (workflow and activity task latencies, slots, polls...) and ours (workflows/metrics.py, the appends'
    in activities/eventlog.py), durations in seconds. None (the SDK's default runtime) when ``listen`` is
    empty."""
    if not listen:
        return None
    return Runtime(telemetry=TelemetryConfig(logging=logs.core_logging(),
                                             metrics=PrometheusConfig(bind_address=listen, durations_as_seconds=True,
                                                                      counters_total_suffix=True)))


def _user_of(dsn: str) -> str | None:
    from urllib.parse import urlparse

    return urlparse(dsn).username


async def main() -> None:
    logs.configure()
    logs.forward_core_logs()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(Settings()):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
