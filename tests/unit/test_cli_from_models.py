"""The decision commands come from the commands' models: one command per update, one argument or option per
field with the field's description as its help, the model's docstring as the command's help, the example as a
command line that sends it; the spellings callers use still work; a bad value is refused by the model, naming
the field, with exit 2, before anything is sent. Server-less: the real `complaints` app, read through click
(the commands as built) and run with typer's runner against an address where nothing listens."""

from __future__ import annotations

import inspect
import json
import shlex
from typing import Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

import starter
from cli import decisions
from cli.main import app
from domain import commands as cmd

#: Update name -> command name: what README, docs, demos and tests type.
NAMES = {
    "assess": "assess", "choose_remedy": "choose-remedy", "move_offline": "move-offline",
    "log_message": "log-message", "choose_option": "choose-option", "record_follow_up": "record-follow-up",
    "record_churn": "record-churn", "withdraw": "withdraw", "escalate": "escalate",
    "extend_deadline": "extend-deadline", "close": "close", "apologise_for_conduct": "apologise",
}
UPDATES = sorted(cmd.COMMANDS)
COMPLAINTS = typer.main.get_command(app)
#: Nothing listens here: a command that tried to connect would fail with exit 1, not refuse with exit 2.
NOWHERE = {"TEMPORAL_ADDRESS": "127.0.0.1:9", "COMPLAINTS_TOKEN": ""}


def command(update: str) -> Any:
    return COMPLAINTS.commands[NAMES[update]]  # type: ignore[attr-defined]


def given(update: str, *args: str) -> dict[str, Any]:
    """What the command line makes of ``args`` (after the complaint id): the update's JSON argument."""
    context = command(update).make_context(NAMES[update], ["C-1001", *args])
    return decisions.fields_given(cmd.COMMANDS[update], context.params)


def test_every_update_has_its_command_under_the_name_callers_use() -> None:
    assert set(NAMES) == set(cmd.COMMANDS)
    for update, name in NAMES.items():
        assert decisions.command_name(update) == name
        assert name in COMPLAINTS.commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("update", UPDATES)
def test_each_field_is_an_argument_or_option_whose_help_is_its_description(update: str) -> None:
    model = cmd.COMMANDS[update]
    params = {p.name: p for p in command(update).params}
    for field, info in model.model_fields.items():
        assert info.description, f"{update}.{field} has no description"
        assert params[field].help.startswith(info.description), (field, params[field].help)
    assert model.__doc__ and command(update).help == " ".join(inspect.cleandoc(model.__doc__).split())
    assert model.example and f"Example: {decisions.example_line(update)}" in command(update).epilog


@pytest.mark.parametrize("update", UPDATES)
def test_every_decision_command_takes_json_by_and_update_id(update: str) -> None:
    options = {o for p in command(update).params for o in p.opts}
    assert {"--json", "--by", "--update-id"} <= options


def test_choices_are_shown_and_a_list_is_a_repeated_option() -> None:
    params = {p.name: p for p in command("assess").params}
    assert "One of: valid | invalid | partially_valid." in params["verdict"].help
    assert params["remedies"].opts == ["--remedy"] and params["remedies"].multiple
    assert "Repeat --remedy for each." in params["remedies"].help
    rung = next(p for p in command("move_offline").params if p.name == "rung")
    assert "One of: email | phone | meeting." in rung.help


@pytest.mark.parametrize("update", UPDATES)
def test_each_example_is_a_valid_command_and_its_command_line_sends_it(update: str) -> None:
    model = cmd.COMMANDS[update]
    assert model.example is not None
    line = shlex.split(decisions.example_line(update))
    assert line[:3] == ["complaints", NAMES[update], "C-1001"]
    assert starter.parse_command(update, given(update, *line[3:])) == starter.parse_command(update, model.example)


#: The spellings in README, cli/demo.py, docs and tests, with the JSON each one sends.
SPELLINGS = [
    ("assess", ["--verdict", "valid", "--root-cause", "service", "--findings", "Promised 2 days, took 9."],
     {"verdict": "valid", "root_cause": "service", "findings": "Promised 2 days, took 9."}),
    ("assess", ["--verdict", "partially_valid", "--root-cause", "product", "--findings", "F", "--clause", "C",
                "--remedy", "voucher", "--remedy", "repair", "--default-remedy", "repair", "--offer-days", "5",
                "--apology", "A", "--sop", "SOP 4.2", "--explanation", "E", "--by", "agent:ana"],
     {"verdict": "partially_valid", "root_cause": "product", "findings": "F", "clause": "C",
      "remedies": ["voucher", "repair"], "default_remedy": "repair", "offer_days": 5, "apology": "A",
      "sop_reference": "SOP 4.2", "explanation": "E", "by": "agent:ana"}),
    ("choose_remedy", ["A"], {"option_id": "A"}),
    ("choose_remedy", ["B", "--by", "customer"], {"option_id": "B", "by": "customer"}),
    ("move_offline", ["email", "siti@example.co.id"], {"rung": "email", "detail": "siti@example.co.id"}),
    ("move_offline", ["meeting", "Branch 3", "--meeting-at", "2026-11-24T09:30:00+07:00"],
     {"rung": "meeting", "detail": "Branch 3", "meeting_at": "2026-11-24T09:30:00+07:00"}),
    ("log_message", ["--sender", "agent", "--channel", "phone", "--text", "Called back.", "--at",
                     "2026-11-24T09:30:00+07:00"],
     {"sender": "agent", "channel": "phone", "text": "Called back.", "at": "2026-11-24T09:30:00+07:00"}),
    ("choose_option", ["leave", "--reason", "Too strict."], {"option": "leave", "reason": "Too strict."}),
    ("record_follow_up", ["2", "--comment", "Still broken."], {"satisfaction": 2, "comment": "Still broken."}),
    ("record_churn", ["--reason", "Moved away."], {"reason": "Moved away."}),
    ("withdraw", [], {}),
    ("withdraw", ["--reason", "Found it."], {"reason": "Found it."}),
    ("escalate", ["--to", "legal", "--reason", "Regulator named."], {"to": "legal", "reason": "Regulator named."}),
    ("extend_deadline", ["--reason", "R", "--notice", "N"], {"kind": "final_response", "reason": "R", "notice": "N"}),
    ("extend_deadline", ["--kind", "assessment", "--reason", "R", "--notice", "N"],
     {"kind": "assessment", "reason": "R", "notice": "N"}),
    ("close", ["--outcome", "unresolved", "--note", "N"], {"outcome": "unresolved", "note": "N"}),
    ("apologise_for_conduct", ["Sorry for the tone."], {"text": "Sorry for the tone."}),
]


@pytest.mark.parametrize(("update", "args", "sent"), SPELLINGS, ids=[f"{u}-{i}" for i, (u, _, _) in
                                                                     enumerate(SPELLINGS)])
def test_the_spellings_callers_use_send_the_same_json(update: str, args: list[str], sent: dict[str, Any]) -> None:
    # The same command (a default shown in the help is sent as the model's default: the same argument).
    assert starter.parse_command(update, given(update, *args)) == starter.parse_command(update, sent)
    defaults = {p.field for p in decisions.parameters(cmd.COMMANDS[update])
                if not p.info.is_required() and p.info.default is not None}
    assert set(given(update, *args)) - set(sent) <= defaults


REFUSED = [
    (["record-follow-up", "C-1001", "9"], "satisfaction", "less than or equal to 5"),
    (["record-follow-up", "C-1001", "five"], "satisfaction", "valid integer"),
    (["assess", "C-1001", "--verdict", "maybe", "--root-cause", "service", "--findings", "F"], "verdict", "valid"),
    (["assess", "C-1001", "--verdict", "valid", "--root-cause", "service", "--findings", "F", "--offer-days", "0"],
     "offer_days", "greater than or equal to 1"),
    (["assess", "C-1001", "--verdict", "valid", "--root-cause", "service", "--findings", "F",
      "--remedy", "voucher", "--remedy", "cash"], "remedies.1", "voucher"),
    (["move-offline", "C-1001", "fax", "x"], "rung", "email"),
    (["log-message", "C-1001", "--sender", "agent", "--channel", "email", "--text", "T", "--at", "yesterday"],
     "at", "datetime"),
    (["close", "C-1001", "--outcome", "maybe", "--note", "N"], "outcome", "resolved"),
    (["apologise", "C-1001", "x" * 601], "text", "at most 600"),
    (["withdraw", "C-1001", "--by", "Agent Ana"], "by", "pattern"),
]


@pytest.mark.parametrize(("args", "field", "reason"), REFUSED, ids=[a[0] + "-" + f for a, f, _ in REFUSED])
def test_a_bad_value_is_refused_naming_the_field_with_exit_2_before_anything_is_sent(
        args: list[str], field: str, reason: str) -> None:
    done = CliRunner().invoke(app, args, env=NOWHERE)
    assert done.exit_code == 2, done.output
    assert "refused: invalid" in done.output and f"  {field}: " in done.output and reason in done.output, done.output


def test_the_schema_carries_each_description_and_example_and_no_command_line_hint() -> None:
    done = CliRunner().invoke(app, ["schema"])
    assert done.exit_code == 0, done.output
    schemas = json.loads(done.stdout)
    for update, model in cmd.COMMANDS.items():
        schema = schemas[update]
        assert schema["description"] == inspect.cleandoc(model.__doc__ or "")
        assert schema["examples"] == [model.example]
        for field, info in model.model_fields.items():
            assert schema["properties"][field]["description"] == info.description
        assert keywords(schema) <= JSON_SCHEMA, f"{update}: {keywords(schema) - JSON_SCHEMA}"


#: The JSON Schema keywords the contract uses: a command-line hint leaking into it would add one of its own.
JSON_SCHEMA = {"$defs", "$ref", "additionalProperties", "anyOf", "const", "default", "description", "enum",
               "examples", "format", "items", "maxLength", "maximum", "minLength", "minimum", "pattern",
               "properties", "required", "title", "type"}


def keywords(schema: Any) -> set[str]:
    """Every keyword in a schema, at any depth (not the names of properties and definitions, nor examples)."""
    if isinstance(schema, list):
        return set().union(*(keywords(s) for s in schema))
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            found |= set().union(*(keywords(s) for s in value.values()))
        elif key not in ("examples", "default", "enum", "const"):
            found |= keywords(value)
    return found


def test_a_flag_an_integer_and_a_time_come_from_their_field_types() -> None:
    """Kinds of field no command has yet, so a new one needs nothing in cli/decisions.py."""

    class Sample(cmd.Command):
        """A sample."""

        urgent: bool = Field(default=False, description="Whether it is urgent.")
        count: int = Field(default=3, description="How many.")

    sample = typer.Typer()
    sample.command("sample")(decisions.command_for("sample", Sample))
    built = typer.main.get_command(sample)
    params = {p.name: p for p in built.params}
    assert params["urgent"].opts == ["--urgent"] and params["urgent"].secondary_opts == ["--no-urgent"]
    assert params["count"].help == "How many." and params["count"].default == "3"

    def sent(*args: str) -> dict[str, Any]:
        return decisions.fields_given(Sample, built.make_context("sample", ["C-1001", *args]).params)

    assert sent("--urgent", "--count", "12") == {"urgent": True, "count": 12}
    assert sent("--no-urgent") == {"urgent": False, "count": 3}
    assert sent("--count", "twelve")["count"] == "twelve"  # left for the model to refuse, naming the field
