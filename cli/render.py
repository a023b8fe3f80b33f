"""How a complaint looks in a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from domain.complaint import Complaint
from domain.personal import shown
from domain.summary import details, when


def complaint_panel(state: Complaint) -> Panel:
    """The same details an operator reads in the Temporal UI."""
    title = f"{state.complaint_id} · {state.subject_title} · {state.channel.value} · {state.severity.value}"
    return Panel(Markdown(details(state)), title=title, expand=False)


def deadlines_table(state: Complaint) -> Table:
    table = Table(title="Deadlines", show_lines=False)
    for column in ("kind", "due", "rule", "status"):
        table.add_column(column)
    for d in state.deadlines:
        met = d.met_in_time
        status = "breached" if d.breached else "met" if met else "missed" if met is False else (
            "warned" if d.warned else "open")
        table.add_row(d.kind.value, when(d.due_at), d.rule,
                      f"{status}{' (extended)' if d.extended else ''}")
    return table


def print_complaint(console: Console, state: Complaint) -> None:
    console.print(complaint_panel(state))
    if state.deadlines:
        console.print(deadlines_table(state))
    if state.offer and state.stage.value == "awaiting_remedy_choice":
        offers = Table(title="Remedies offered")
        for column in ("option", "kind", "value", "description"):
            offers.add_column(column)
        for o in state.offer.options:
            default = " (default)" if o.id == state.offer.default_option else ""
            offers.add_row(o.id + default, o.kind.value, str(o.value), shown(o.description))
        console.print(offers)
