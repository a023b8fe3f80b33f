"""Self-contained HTML for auditors: one file, inline CSS, no script, no fonts or images from anywhere,
legible on screen and on paper. Every piece of text goes through ``esc``."""

from __future__ import annotations

from html import escape
from typing import Any

from audit.timeline import Timeline

CSS = """
:root { --ink: #1d2327; --muted: #5f6b73; --line: #d9dee2; --ok: #1a7f37; --bad: #b42318; --soft: #f5f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
       max-width: 1100px; margin: 2rem auto; padding: 0 1.2rem; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 2rem 0 .6rem; }
.meta { color: var(--muted); margin-bottom: 1rem; }
.badge { display: inline-block; padding: .15rem .6rem; border-radius: 1rem; font-weight: 600; font-size: .8rem;
         border: 1.5px solid currentColor; vertical-align: middle; }
.ok { color: var(--ok); } .bad { color: var(--bad); }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { text-align: left; vertical-align: top; padding: .4rem .5rem; border-bottom: 1px solid var(--line); }
th { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
.said { white-space: pre-wrap; background: var(--soft); border-left: 3px solid var(--line); margin: .4rem 0 0;
        padding: .4rem .6rem; font-style: italic; }
code, .hash { font: 12px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.hash { color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1.2rem; }
.figure { border: 1px solid var(--line); border-radius: .4rem; padding: .8rem; break-inside: avoid; }
.figure h3 { margin: 0 0 .5rem; font-size: .95rem; }
.kpis { display: flex; flex-wrap: wrap; gap: 1.5rem; margin: .5rem 0 1rem; }
.kpi b { display: block; font-size: 1.5rem; }
footer { color: var(--muted); font-size: .8rem; margin-top: 2rem; border-top: 1px solid var(--line);
         padding-top: .6rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  tr, .figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def page(title: str, body: str, footer: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}<footer>{esc(footer)}</footer></body></html>\n")


def timeline(story: Timeline) -> str:
    badge = ('<span class="badge ok">verified</span>' if story.verified
             else '<span class="badge bad">broken</span>')
    state = story.state
    facts = [story.subject, state.channel.value if state else "", state.jurisdiction.value if state else "",
             f"stage {state.stage.value}" if state else "", f"outcome {state.outcome.value}" if state and state.outcome
             else "", story.calendar]
    parts = [f"<h1>Complaint {esc(story.complaint_id)} {badge}</h1>",
             f'<div class="meta">{" · ".join(esc(f) for f in facts if f)}</div>']
    if story.breaks:
        parts.append('<h2 class="bad">Breaks in the chain</h2><table><tr><th>#</th><th>kind</th><th>detail</th></tr>')
        parts += [f"<tr><td class=num>{b.sequence}</td><td>{esc(b.kind)}</td><td>{esc(b.detail)}</td></tr>"
                  for b in story.breaks]
        parts.append("</table>")
    if story.deadlines:
        parts.append("<h2>Deadlines</h2><table><tr><th>deadline</th><th>due</th><th>rule</th><th>status</th></tr>")
        for d in story.deadlines:
            tone = "ok" if d.status.startswith("met in time") \
                else "bad" if d.status.startswith(("breached", "met late")) else ""
            parts.append(f"<tr><td>{esc(d.kind)}</td><td>{esc(d.due)}</td><td>{esc(d.rule)}</td>"
                         f'<td class="{tone}">{esc(d.status)}</td></tr>')
        parts.append("</table>")
    parts.append("<h2>What happened</h2><table><tr><th>#</th><th>when</th><th>bd</th><th>who</th>"
                 "<th>what happened</th><th>hash</th></tr>")
    for e in story.entries:
        said = f'<div class="said">{esc(e.said)}</div>' if e.said is not None else ""
        parts.append(f"<tr><td class=num>{e.sequence}</td><td class=when>{esc(e.local_time)}</td>"
                     f"<td class=num>+{e.business_days}</td><td>{esc(e.actor)}</td><td>{esc(e.text)}{said}</td>"
                     f'<td><span class="hash" title="{esc(e.hash)}">{esc(e.hash[:16])}</span></td></tr>')
    parts.append("</table>")
    parts.append("<h2>Chain</h2><table><tr><th>#</th><th>prev_hash</th><th>hash</th></tr>")
    parts += [f'<tr><td class=num>{e.sequence}</td><td class="hash">{esc(e.prev_hash)}</td>'
              f'<td class="hash">{esc(e.hash)}</td></tr>' for e in story.entries]
    parts.append("</table>")
    footer = ("Rebuilt from the event log alone. Each hash is sha256(previous hash || canonical JSON of the event); "
              "`complaints verify` recomputes them and checks them against the workflow's history.")
    return page(f"Complaint {story.complaint_id}", "".join(parts), footer)


PALETTE = ("#2f6f9f", "#c0673a", "#4f8f5a", "#8a5fa8", "#b8a33c", "#5b7d8a")


def bars(title: str, items: list[tuple[str, int]], color: str = PALETTE[0], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG: one bar a label, the value written at its end."""
    if not items:
        return f'<div class="figure"><h3>{esc(title)}</h3><p class="meta">nothing yet</p></div>'
    label_w, bar_w, row_h = 170, 240, 24
    top = max(v for _, v in items) or 1
    height = row_h * len(items) + 6
    rows = []
    for i, (label, value) in enumerate(items):
        y = i * row_h + 4
        width = max(2, round(bar_w * value / top)) if value else 0
        rows.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{esc(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{width}" height="{row_h - 8}" rx="3" fill="{color}"/>'
                    f'<text x="{label_w + width + 6}" y="{y + 15}" font-size="12">{esc(value)}{esc(unit)}</text>')
    svg = (f'<svg role="img" aria-label="{esc(title)}" viewBox="0 0 {label_w + bar_w + 60} {height}" '
           f'width="100%" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" fill="#1d2327">'
           + "".join(rows) + "</svg>")
    return f'<div class="figure"><h3>{esc(title)}</h3>{svg}</div>'


def stacked(title: str, groups: dict[str, dict[str, int]], keys: list[str]) -> str:
    """Stacked horizontal bars: one bar a group (a root cause), one colour a key (a verdict)."""
    if not groups:
        return bars(title, [])
    label_w, bar_w, row_h = 170, 240, 24
    top = max(sum(g.values()) for g in groups.values()) or 1
    rows = []
    for i, (label, parts) in enumerate(sorted(groups.items())):
        y, x = i * row_h + 4, float(label_w)
        rows.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{esc(label)}</text>')
        for k, key in enumerate(keys):
            width = bar_w * parts.get(key, 0) / top
            if width:
                rows.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{row_h - 8}" '
                            f'fill="{PALETTE[k % len(PALETTE)]}"><title>{esc(label)}, {esc(key)}: '
                            f'{parts[key]}</title></rect>')
                x += width
        rows.append(f'<text x="{x + 6:.1f}" y="{y + 15}" font-size="12">{sum(parts.values())}</text>')
    legend_y = len(groups) * row_h + 14
    per_row = 4
    for k, key in enumerate(keys):
        x, y = 10 + (k % per_row) * 115, legend_y + (k // per_row) * 16
        rows.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
                    f'<text x="{x + 14}" y="{y + 9}" font-size="11">{esc(key.replace("_", " "))}</text>')
    legend_h = 16 * ((len(keys) + per_row - 1) // per_row) + 4
    svg = (f'<svg role="img" aria-label="{esc(title)}" viewBox="0 0 {label_w + bar_w + 60} {legend_y + legend_h}" '
           f'width="100%" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" fill="#1d2327">'
           + "".join(rows) + "</svg>")
    return f'<div class="figure"><h3>{esc(title)}</h3>{svg}</div>'


def report(data: Any, tables: list[tuple[str, list[str], list[list[Any]]]]) -> str:
    times = data.times()
    rate = f"{data.reopen_rate:.0%}" if data.reopen_rate is not None else "-"
    kpis = [("complaints", data.complaints), ("still open", data.open), ("events", data.events),
            ("median days to acknowledge", times["acknowledgement"]["median"]),
            ("median days to resolve", times["resolution"]["median"]),
            ("p90 days to resolve", times["resolution"]["p90"]), ("reopen rate", rate)]
    by_cause: dict[str, dict[str, int]] = {}
    verdicts: list[str] = []
    for (cause, verdict, _channel), n in data.causes.items():
        by_cause.setdefault(cause.replace("_", " "), {}).setdefault(verdict, 0)
        by_cause[cause.replace("_", " ")][verdict] += n
        if verdict not in verdicts:
            verdicts.append(verdict)
    breaches: dict[str, int] = {}
    for (jurisdiction, _kind), n in data.breaches.items():
        breaches[jurisdiction] = breaches.get(jurisdiction, 0) + n
    remedies: dict[str, int] = {}
    for (kind, _how), n in data.remedies.items():
        remedies[kind.replace("_", " ")] = remedies.get(kind.replace("_", " "), 0) + n
    figures = [
        stacked("Complaints by root cause and verdict", by_cause, sorted(verdicts)),
        bars("Customers lost, by cause", sorted(data.churn.items()), PALETTE[1]),
        bars("Satisfaction (1-5)", [(str(k), data.satisfaction[k]) for k in range(1, 6)], PALETTE[2]),
        bars("Deadline breaches by jurisdiction", sorted(breaches.items()), PALETTE[1]),
        bars("Remedies chosen", sorted(remedies.items()), PALETTE[3]),
        bars("Outcomes", sorted((k.replace("_", " "), v) for k, v in data.outcomes.items()), PALETTE[4]),
    ]
    parts = ["<h1>What our complaints teach</h1>",
             f'<div class="meta">From the event log alone'
             f'{", complaints received since " + esc(data.since) if data.since else ""}.</div>',
             '<div class="kpis">' + "".join(f'<div class="kpi"><b>{esc(v if v is not None else "-")}</b>{esc(k)}</div>'
                                            for k, v in kpis) + "</div>",
             '<div class="grid">' + "".join(figures) + "</div>"]
    for title, columns, rows in tables:
        parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    return page("Complaints report", "".join(parts),
                "Built by `complaints report` from the hash-chained log, read by global position. No personal "
                "data is read: erasing a customer changes no figure here.")
