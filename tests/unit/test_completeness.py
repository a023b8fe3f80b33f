"""Nothing half-added: every event says how it changes a complaint and how it reads, every command has its
update (with the validator that keeps refused decisions out of history), every stage says who is awaited,
and every activity the workflow calls has an implementation of the same signature. Each test names what is
missing. (That every example under examples/updates validates against its command is tests/test_contract.py.)
Server-less: `make unit`."""

from __future__ import annotations

import inspect
import types
import typing
from datetime import UTC, datetime
from enum import Enum
from typing import Any, get_args, get_origin, get_type_hints

import orjson
import pytest
from pydantic import BaseModel
from temporalio import activity
from temporalio.workflow import _Definition

from activities import messages as msg
from domain import commands as cmd
from domain import decide
from domain import events as ev
from domain.chain import ChainHead, Recorded
from domain.complaint import Complaint, FoldError, evolve
from domain.summary import AWAITING, awaiting
from domain.values import Money
from domain.vocabulary import Stage
from workflows.complaint import ComplaintWorkflow

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def sample_value(annotation: Any) -> Any:
    """Some valid value of a field's type: enough to build any event."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(a for a in args if a is not type(None)))
    if origin is list:
        return [sample_value(args[0])]
    if origin is typing.Literal:
        return args[0]
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return next(iter(annotation))
        if annotation is Money:
            return Money(amount_minor=1_000, currency="IDR")
        if issubclass(annotation, BaseModel):
            return sample(annotation)
        if annotation is datetime:
            return AT
        if annotation is bool:
            return True
        if annotation is int:
            return 1
        if annotation is str:
            return "A"
    raise TypeError(f"no sample for {annotation!r}")


def sample(model: type[BaseModel]) -> Any:
    hints = get_type_hints(model)
    return model(**{name: sample_value(hints[name]) for name in model.model_fields})


def received() -> Complaint:
    first = sample(ev.ComplaintReceived)
    return Complaint(complaint_id="C-1", head=ChainHead(), **first.apply(None, AT))


EVENTS = sorted(ev.EVENT_TYPES.values(), key=lambda c: c.__name__)


@pytest.mark.parametrize("event_type", EVENTS, ids=lambda c: c.__name__)
def test_every_event_says_how_it_changes_a_complaint_and_how_it_reads(event_type: type[ev.Event]) -> None:
    missing = [part for part in ("apply", "describe") if getattr(event_type, part) is getattr(ev.Event, part)]
    assert not missing, f"{event_type.__name__} has no {' and no '.join(missing)} (define it in domain/events.py)"
    event = sample(event_type)
    words = event.describe(lambda moment: moment.isoformat())
    assert isinstance(words, str) and words.strip()
    if event_type is not ev.ComplaintReceived:
        changes = event.apply(received(), AT)
        unknown = changes.keys() - Complaint.model_fields.keys()
        assert not unknown, f"{event_type.__name__}.apply changes {unknown}, which a Complaint does not have"


def test_the_fold_refuses_a_change_naming_a_field_the_complaint_does_not_have() -> None:
    class Misspelt(ev.ComplaintWithdrawn):  # a newcomer's typo: "notifed"
        def apply(self, state: Complaint, at: datetime) -> ev.Changes:
            return {"notifed": True}

    state = received()
    record = Recorded(complaint_id="C-1", sequence=1, type="ComplaintWithdrawn", schema_version=1,
                      payload={"reason": None}, occurred_at=AT, actor="system", prev_hash=state.head.hash,
                      hash="0" * 64)
    original = ev.EVENT_TYPES["ComplaintWithdrawn"]
    ev.EVENT_TYPES["ComplaintWithdrawn"] = Misspelt
    try:
        with pytest.raises(FoldError, match="notifed"):
            evolve(state, record)
    finally:
        ev.EVENT_TYPES["ComplaintWithdrawn"] = original


def test_every_command_is_an_update_of_the_workflow_with_its_validator() -> None:
    updates = _Definition.must_from_class(ComplaintWorkflow).updates
    missing = sorted(set(cmd.COMMANDS) - set(updates))
    assert not missing, f"commands with no update on ComplaintWorkflow: {missing} (add a @decision method)"
    for name, model in cmd.COMMANDS.items():
        update = updates[name]
        assert update.validator is not None, f"update {name} has no validator"
        assert get_type_hints(update.fn)["command"] is model, f"update {name} does not take {model.__name__}"
    unknown = sorted(set(updates) - set(cmd.COMMANDS))
    assert not unknown, f"updates with no command model in domain/commands.py: {unknown}"


def test_every_command_says_at_which_stages_it_is_accepted() -> None:
    missing = sorted(m.__name__ for m in cmd.COMMANDS.values() if m not in decide.ALLOWED)
    assert not missing, f"commands with no stages in domain/decide.py ALLOWED: {missing}"


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_every_stage_says_who_is_awaited(stage: Stage) -> None:
    assert stage in AWAITING, f"stage {stage.value} has no 'awaiting' text in domain/summary.py AWAITING"


def test_the_awaiting_text_of_a_stage_reads() -> None:
    assert awaiting(received()).startswith("the system")


STUBS = [value for value in vars(msg).values() if inspect.iscoroutinefunction(value)
         and activity._Definition.from_callable(value) is not None]


def implementations() -> dict[str, Any]:
    """Every activity implemented under activities/ (functions and methods of classes), by name."""
    import importlib
    import pkgutil

    import activities

    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(activities.__path__):
        module = importlib.import_module(f"activities.{info.name}")
        if module is msg:
            continue
        candidates = [v for v in vars(module).values() if inspect.isfunction(v)]
        candidates += [m for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__
                       for m in vars(c).values() if inspect.isfunction(m)]
        for fn in candidates:
            definition = activity._Definition.from_callable(fn)
            if definition is not None:
                found[definition.name] = fn
    return found


def test_every_activity_the_workflow_calls_is_implemented_with_its_stubs_signature() -> None:
    assert {activity._Definition.must_from_callable(s).name for s in STUBS} == {
        msg.ADMIT, msg.FORGET_RUN, msg.APPEND_EVENTS, msg.COMPUTE_DEADLINES, msg.PLAN_FOLLOW_UP,
        msg.QUOTE_REMEDIES, msg.FULFIL_REMEDY, msg.DELIVER_MESSAGE}
    registered = implementations()
    for stub in STUBS:
        name = activity._Definition.must_from_callable(stub).name
        assert name in registered, f"activity {name} has a stub but the worker registers no implementation"
        wanted, found = get_type_hints(stub), get_type_hints(registered[name])
        found.pop("self", None)
        assert wanted == found, f"activity {name}: the stub says {wanted}, the implementation {found}"


@pytest.mark.parametrize("event_type", EVENTS, ids=lambda c: c.__name__)
def test_every_event_reads_the_same_from_its_stored_json_text_as_from_the_mapping(event_type: type[ev.Event]) -> None:
    """The report's fold reads payloads as the log's JSON text (pydantic parses it into the event in one pass);
    every other reader gives a mapping. Both give the same event, and refuse the same payloads."""
    payload = sample(event_type).model_dump(mode="json")
    name = event_type.__name__
    as_stored = orjson.dumps(dict(reversed(payload.items()))).decode()  # jsonb keeps its own key order
    from_text, from_payload = (ev.parse_event(name, event_type.version, p) for p in (as_stored, payload))
    assert from_text == from_payload and from_text.model_fields_set == from_payload.model_fields_set

    wrong = {**payload, "misspelt": 1}
    with pytest.raises(ValueError, match="misspelt") as from_mapping:
        ev.parse_event(name, event_type.version, wrong)
    with pytest.raises(ValueError, match="misspelt") as text:
        ev.parse_event(name, event_type.version, orjson.dumps(wrong).decode())
    assert [e["loc"] for e in text.value.errors()] == [e["loc"] for e in from_mapping.value.errors()]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=f"{name} has no upcaster from version {event_type.version + 1}"):
        ev.parse_event(name, event_type.version + 1, as_stored)
