"""Every saved history replays deterministically with today's workflow code. A change to ComplaintWorkflow
that would break a running complaint fails here. Histories are saved by the path tests with
SAVE_HISTORIES=1 (`make histories`); once committed, they are never regenerated to make this test pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from codec import data_converter, default_codec
from workflows.complaint import ComplaintWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_is_a_saved_history_for_every_path() -> None:
    names = {p.stem for p in HISTORIES}
    expected = {
        "valid_remedy_chosen", "valid_offer_expired", "partially_valid", "invalid_stays", "invalid_leaves",
        "reopened_then_satisfied", "reopened_twice_escalated", "withdrawn_awaiting_assessment",
        "withdrawn_awaiting_remedy_choice", "withdrawn_awaiting_follow_up", "sla_warning_and_breach",
        "deadline_extended", "follow_up_unanswered", "continued_as_new", "fulfilment_refusing_provider",
        "fulfilment_failing_provider",
    }
    assert expected <= names, f"missing histories: {sorted(expected - names)}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_saved_history_replays_with_todays_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=[ComplaintWorkflow], data_converter=data_converter(default_codec()))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
