"""The decision commands, generated from the commands' models (domain/commands.py).

What a decision takes is written once, in its model: the fields with their descriptions, the docstring, the
example. The workflow validates with it and `complaints schema` prints it; here each entry of ``COMMANDS``
becomes a `complaints` command whose arguments and options are the model's fields, whose help is theirs, and
whose values go to the model as the JSON a backend would send (``starter.parse_command``), so the model alone
judges them and a refusal names the field. A new field or a changed description reaches the command line with
nothing to edit here, and the command line cannot drift from the contract.

A field is an option named after it (``root_cause``: ``--root-cause``); a :class:`~domain.commands.CommandLine`
hint in its annotation makes it positional, or gives it another option name. A list field's option is repeated;
an enum or a Literal lists its choices in the help (the model still checks them); an integer is read as one;
anything else (text, an ISO 8601 time) is passed as written.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import types
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic.fields import FieldInfo
from rich.markup import escape

from cli.common import ComplaintArg, err, print_state, run
from cli.common import client as temporal_client
from domain import commands as cmd

UpdateId = Annotated[str | None, typer.Option(
    "--update-id", help="The decision's update id. Default: one derived from the complaint, the update and its "
                        "argument, so sending the very same decision again (say after a lost connection) returns "
                        "the first outcome instead of deciding twice. Pass another id to make the same decision "
                        "again on purpose.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the complaint's state after the decision as JSON.")]

#: The parameters every decision command has besides its fields (no model may name a field so).
_OWN = ("complaint_id", "update_id", "as_json")


def decide(complaint_id: str, name: str, command: Any, update_id: str | None, as_json: bool) -> None:
    """Send a decision under its update id; say so when the outcome is that of the same decision sent before."""
    import starter

    if update_id is not None and not update_id.strip():
        err.print("[red]refused:[/red] --update-id: empty")
        raise typer.Exit(2)
    key = update_id or starter.decision_id(complaint_id, name, command)

    async def go() -> tuple[Any, Any]:
        from temporalio.client import WorkflowQueryFailedError
        from temporalio.service import RPCError

        client = await temporal_client()
        try:  # where the complaint stood, to tell a fresh outcome from the first outcome of this same decision
            before = await starter.status(client, complaint_id)
        except (starter.NotFound, starter.DecisionRefused, WorkflowQueryFailedError, RPCError):
            before = None  # not recorded yet, closed or gone: send says which
        return before, await starter.send(client, complaint_id, name, command, idempotency_key=key)

    before, outcome = run(go())
    if before is not None and outcome.head.sequence <= before.head.sequence:
        err.print(f"[yellow]already recorded:[/yellow] this {escape(name)} was sent before (update id "
                  f"{escape(key)}); its outcome, at event #{outcome.head.sequence}, is shown (the complaint is at "
                  f"#{before.head.sequence}). To make the same decision again, pass another --update-id.")
    print_state(outcome, as_json)


def send(complaint_id: str, name: str, fields: dict[str, Any], as_json: bool = False,
         update_id: str | None = None) -> None:
    """Check the fields against the update's model (exit 2 naming the field, before any connection), then decide."""
    import starter

    command = run(lambda: starter.parse_command(name, {k: v for k, v in fields.items() if v is not None}))
    decide(complaint_id, name, command, update_id, as_json)


# --- a model's fields as parameters -------------------------------------------------------------------------


def _bare(annotation: Any) -> Any:
    """The type a value has, under ``Annotated`` and ``| None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType) and type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _choices(kind: Any) -> tuple[str, ...]:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return tuple(str(member.value) for member in kind)
    if get_origin(kind) is Literal:
        return tuple(str(v.value if isinstance(v, Enum) else v) for v in get_args(kind))
    return ()


@dataclass(frozen=True)
class Parameter:
    """One field of a command, as its command takes it."""

    field: str
    info: FieldInfo

    @property
    def hint(self) -> cmd.CommandLine:
        return next((m for m in self.info.metadata if isinstance(m, cmd.CommandLine)), cmd.CommandLine())

    @property
    def option(self) -> str:
        return self.hint.option or "--" + self.field.replace("_", "-")

    @property
    def repeated(self) -> bool:
        return get_origin(_bare(self.info.annotation)) is list

    @property
    def kind(self) -> Any:
        """The type of one value: the list's item for a repeated option."""
        bare = _bare(self.info.annotation)
        return _bare(get_args(bare)[0]) if self.repeated else bare

    @property
    def is_flag(self) -> bool:
        return self.kind is bool and not self.repeated

    @property
    def help(self) -> str:
        """The field's description, with what the command line adds: its choices, that it repeats."""
        said = [self.info.description or ""]
        if choices := _choices(self.kind):
            said.append("One of: " + " | ".join(choices) + ".")
        if self.repeated:
            said.append(f"Repeat {self.option} for each.")
        return " ".join(said)

    def typer_parameter(self) -> inspect.Parameter:
        """The parameter typer reads: an argument or an option, as text (or a flag), optional unless required."""
        required = self.info.is_required()
        default = None if required else self.info.get_default(call_default_factory=True)
        if isinstance(default, Enum):
            default = default.value
        if default is not None and not self.is_flag:
            default = str(default)  # the model's default, shown, and read back as any value given
        shown = default is not None
        if self.hint.argument:
            info: Any = typer.Argument(help=self.help, show_default=shown)
        elif self.is_flag:
            info = typer.Option(f"{self.option}/--no-{self.option.removeprefix('--')}", help=self.help,
                                show_default=shown)
        else:
            info = typer.Option(self.option, help=self.help, metavar="<int>" if self.kind is int else None,
                                show_default=shown)
        text: Any = bool if self.is_flag else list[str] if self.repeated else str
        return inspect.Parameter(self.field, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=Annotated[text if required else text | None, info],
                                 default=inspect.Parameter.empty if required else default)

    def value(self, given: Any) -> Any:
        """What was given, as the contract's JSON value (None: not given, the model's default applies)."""
        if given is None or (self.repeated and not given):
            return None
        if self.repeated:
            return [self._one(item) for item in given]
        return self._one(given)

    def _one(self, text: Any) -> Any:
        # An integer written as one becomes one; anything else is passed as written, for the model to refuse.
        if self.kind is int and isinstance(text, str) and re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            return int(text)
        return text


def parameters(model: type[cmd.Command]) -> list[Parameter]:
    """A command's fields, its own first and then those every command has (``by``), in the model's order."""
    own = [Parameter(name, info) for name, info in model.model_fields.items() if name not in cmd.Command.model_fields]
    shared = [Parameter(name, info) for name, info in model.model_fields.items() if name in cmd.Command.model_fields]
    return own + shared


def command_name(update: str) -> str:
    return cmd.COMMANDS[update].cli_name or update.replace("_", "-")


def fields_given(model: type[cmd.Command], given: dict[str, Any]) -> dict[str, Any]:
    """The command line's values, by field, as the JSON object the update takes."""
    return {p.field: value for p in parameters(model) if (value := p.value(given.get(p.field))) is not None}


def example_line(update: str, complaint_id: str = "C-1001") -> str:
    """The model's example as the command line that sends it."""
    model = cmd.COMMANDS[update]
    example = model.example or {}
    words = ["complaints", command_name(update), complaint_id]
    options: list[str] = []
    for p in parameters(model):
        if p.field not in example:
            continue
        values = example[p.field] if p.repeated else [example[p.field]]
        if p.hint.argument:
            words += [str(v) for v in values]
        elif p.is_flag:
            options.append(p.option if example[p.field] else "--no-" + p.option.removeprefix("--"))
        else:
            for v in values:
                options += [p.option, str(v)]
    return " ".join(shlex.quote(w) for w in words + options)


# --- the commands ---------------------------------------------------------------------------------------------


def command_for(update: str, model: type[cmd.Command]) -> Callable[..., None]:
    """The function typer turns into the command: its signature is built from the model's fields."""
    fields = parameters(model)
    clash = {p.field for p in fields} & set(_OWN)
    assert not clash, f"{model.__name__} has fields named as the command's own parameters: {clash}"

    def decision(complaint_id: str, update_id: str | None = None, as_json: bool = False, **given: Any) -> None:
        send(complaint_id, update, fields_given(model, given), as_json, update_id)

    own = [inspect.Parameter("complaint_id", inspect.Parameter.KEYWORD_ONLY, annotation=ComplaintArg)]
    own_after = [
        inspect.Parameter("update_id", inspect.Parameter.KEYWORD_ONLY, annotation=UpdateId, default=None),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, annotation=AsJson, default=False),
    ]
    decision.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        own + [p.typer_parameter() for p in fields] + own_after)
    decision.__name__ = decision.__qualname__ = update
    return decision


def _paragraphs(doc: str) -> str:
    """A docstring as the help shows it: its paragraphs, each one line (the terminal wraps them)."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


def register(app: typer.Typer) -> None:
    """One command per update, named after it (``choose_remedy``: ``complaints choose-remedy``)."""
    for update, model in cmd.COMMANDS.items():
        as_json = json.dumps(model.example, ensure_ascii=False) if model.example else "{...}"
        epilog = (f"Example: {example_line(update)}\n\n"
                  f"The same as JSON: complaints update C-1001 {update} {shlex.quote(as_json)} "
                  f"(the contract: complaints schema {update}).")
        app.command(command_name(update), help=_paragraphs(model.__doc__ or ""), epilog=escape(epilog))(
            command_for(update, model))
