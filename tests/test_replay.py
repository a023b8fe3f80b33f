"""Every saved history replays deterministically with today's workflow code. A change to ComplaintWorkflow
that would break a running complaint fails here. Histories are saved by the path tests with
SAVE_HISTORIES=1 (`make histories`) into a folder named for the day; once committed, a folder is never
regenerated to make this test pass: a newer one is added beside it, and every one keeps replaying."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.common import HeaderCodecBehavior
from temporalio.worker import Replayer

from codec import data_converter, default_codec
from settings import workflow_id
from workflows.complaint import ComplaintWorkflow
from workflows.forget import ForgetRefusedRun
from workflows.perimeter import for_replay, sandbox_runner
from workflows.start import ComplaintStart

ROOT = Path(__file__).parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))


def test_there_is_a_saved_history_for_every_path() -> None:
    newest = max(p for p in ROOT.iterdir() if p.is_dir())
    names = {p.stem for p in newest.glob("*.json")}
    expected = {
        "valid_remedy_chosen", "valid_offer_expired", "partially_valid", "invalid_stays", "invalid_leaves",
        "reopened_then_satisfied", "reopened_twice_escalated", "withdrawn_awaiting_assessment",
        "withdrawn_awaiting_remedy_choice", "withdrawn_awaiting_follow_up", "sla_warning_and_breach",
        "deadline_extended", "follow_up_unanswered", "continued_as_new", "fulfilment_refusing_provider",
        "fulfilment_failing_provider",
        # The customer's side (tests/customer): a reply read back, and answers given on the page.
        "reply_threaded_and_kept_once", "page_remedy_and_rating_id", "page_remedy_and_rating_en", "page_option_leave",
        "page_option_stay",
        # A decision of a workflow task Temporal lost, folded from the log (tests/workflows/test_lost_task.py).
        "lost_task_folded", "lost_task_answered_before_continuing",
    }
    assert expected <= names, f"missing histories: {sorted(expected - names)}"


async def _workflow_id(text: str) -> str:
    """The workflow id the history ran under (a saved history's events do not hold it, and the workflow
    checks its id against the complaint): the complaint's, from the start's input."""
    events = WorkflowHistory.from_json("unknown", text).events
    payloads = events[0].workflow_execution_started_event_attributes.input.payloads
    [start] = await data_converter(default_codec()).decode(payloads, [ComplaintStart])
    run = start.as_run()
    carried = run.options.resume
    return workflow_id(run.intake.complaint_id if run.intake else carried.complaint_id)


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_a_saved_history_replays_with_todays_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    history = WorkflowHistory.from_json(await _workflow_id(text), text)
    replayer = Replayer(workflows=[ComplaintWorkflow, ForgetRefusedRun], data_converter=data_converter(default_codec()),
                        interceptors=for_replay(), workflow_runner=sandbox_runner(strict=True),
                        header_codec_behavior=HeaderCodecBehavior.CODEC)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
