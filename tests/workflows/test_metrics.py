"""A worker's metrics, scraped from its Prometheus endpoint during a run against a real Temporal and a real
PostgreSQL: the SDK's own and ours, with the values the run gives (events recorded by type, the stages
entered, every append counted and timed)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from codec import data_converter, default_codec
from dev.stack import free_port
from eventlog import PostgresEventStore
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker, metrics_runtime
from workflows.complaint import ComplaintWorkflow

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
            found.append((match["name"], labels, float(match["value"])))
    return found


def total(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, ls, v in found if n == name and all(ls.get(k) == want for k, want in labels.items()))


async def test_a_workers_metrics_show_the_run(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool,
                                              store: PostgresEventStore, task_queue: str,
                                              intake_data: Callable[..., Any]) -> None:
    address = f"127.0.0.1:{free_port(19464)}"
    client = await Client.connect(dev_server.client.service_client.config.target_host,
                                  namespace=dev_server.client.namespace, data_converter=data_converter(default_codec()),
                                  runtime=metrics_runtime(address))
    async with build_worker(client, app_pool, task_queue):
        drive = Driver(dev_server.client, store, task_queue)
        cid = await drive.submit(intake_data())
        now = await drive.send(cid, ComplaintWorkflow.assess, **valid())
        logged = Counter(r.type for r in await store.read(cid))

        def scrape() -> str:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
                assert answer.status == 200
                return str(answer.read().decode())

        ours = {"task_queue": task_queue}
        found = samples(await asyncio.to_thread(scrape))
        # Appends are counted as the activity ends: wait until the last one has been.
        for _ in range(50):
            if sum(total(found, "complaints_events_recorded_total", type=t, **ours) for t in logged) \
                    == sum(logged.values()):
                break
            await asyncio.sleep(0.2)
            found = samples(await asyncio.to_thread(scrape))

    # Ours: every event the log holds for the complaint, by type; the stages it went through.
    for kind, count in logged.items():
        assert total(found, "complaints_events_recorded_total", type=kind, **ours) == count, kind
    assert total(found, "complaints_stage_entered_total", stage="awaiting_assessment", **ours) == 1
    assert total(found, "complaints_stage_entered_total", stage=now.stage.value, **ours) == 1
    appended = total(found, "complaints_appends_total", outcome="appended", **ours)
    assert appended >= 3  # the intake, the acknowledgement, the assessment (at least)
    assert total(found, "complaints_append_latency_count", outcome="appended", **ours) == appended
    assert total(found, "complaints_appends_total", outcome="divergent", **ours) == 0
    # The SDK's own, from the same endpoint.
    assert total(found, "temporal_workflow_task_execution_latency_count", **ours) > 0
    assert total(found, "temporal_activity_execution_latency_count", **ours) + \
        total(found, "temporal_local_activity_execution_latency_count", **ours) > 0
