"""Traces: a worker with an OTLP exporter configured sends OpenTelemetry spans, through the SDK's tracing
interceptor, to a real OTLP/HTTP receiver: the workflow's run, its updates, and each activity scheduled and
run (linked), naming no personal datum."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from temporalio.testing import WorkflowEnvironment

from eventlog import PostgresEventStore
from tests.http_receiver import receiving
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker, flush_traces
from workflows.complaint import ComplaintWorkflow


@pytest.fixture
def collector() -> Iterator[tuple[list[Any], str]]:
    """An OTLP/HTTP trace receiver: every span it is sent, decoded from protobuf, with its service's name."""
    spans: list[Any] = []

    def answer(headers: Any, body: bytes) -> int:
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
            for scope in resource.scope_spans:
                spans.extend((service, span) for span in scope.spans)
        return 200

    with receiving(answer) as base:
        yield spans, f"{base}/v1/traces"


async def test_a_worker_with_an_exporter_sends_a_trace_of_the_run(
        collector: tuple[list[Any], str], monkeypatch: pytest.MonkeyPatch, time_skipping: WorkflowEnvironment,
        app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str, intake_data: Callable[..., Any]) -> None:
    spans, endpoint = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "complaints-worker-test")
    async with build_worker(time_skipping.client, app_pool, task_queue):
        drive = Driver(time_skipping.client, store, task_queue)
        data = intake_data()
        cid = await drive.submit(data)
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await asyncio.to_thread(flush_traces)
    names = {span.name for _, span in spans}
    assert "RunWorkflow:ComplaintWorkflow" in names
    assert "HandleUpdate:assess" in names or "ValidateUpdate:assess" in names, names
    assert any(n.startswith("RunActivity:") for n in names), names
    assert {service for service, _ in spans} == {"complaints-worker-test"}
    # Each activity's run is a child of the workflow's scheduling of it, in one trace (a caller that traces,
    # as the SDKs' tracing interceptors do, makes the whole run one trace with its own).
    started = {span.span_id: span for _, span in spans if span.name.startswith("StartActivity:")}
    runs = [span for _, span in spans if span.name.startswith("RunActivity:")]
    assert runs and all(started[r.parent_span_id].trace_id == r.trace_id for r in runs)
    assert all(started[r.parent_span_id].name.split(":")[1] == r.name.split(":")[1] for r in runs)
    # Spans carry types and ids, never what the customer wrote.
    text = b"".join(span.SerializeToString() for _, span in spans)
    for personal in (data["customer"]["name"], data["description"]):
        assert personal.encode() not in text
