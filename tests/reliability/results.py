"""Where reliability scenarios put their figures, and how docs/reliability.md is written from them."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "out" / "reliability"
#: `make reliability` sets RELIABILITY=full; `make test` runs the fast subset.
FULL = os.environ.get("RELIABILITY") == "full"


def record(row: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    title = row.get("fault") or row["input"]
    name = "".join(c if c.isalnum() else "-" for c in title).strip("-").lower()
    (OUT / f"{name}.json").write_text(json.dumps({**row, "full": FULL}, indent=2))


#: What the faults showed of local appends (COMPLAINTS_LOCAL_APPENDS=1), and why they are off by default.
LOCAL_APPENDS = [
    '## Local appends',
    '',
    'Appends run as activities by default; `COMPLAINTS_LOCAL_APPENDS=1` runs them as local activities (faster:',
    'docs/benchmarks.md). A local append commits before the workflow task that made it completes. With them on,',
    'the Temporal-SIGKILL fault showed two things (2026-12-02, about 30 runs of that fault at full scale):',
    '',
    '- **A task Temporal lost after its append committed** (3 runs in 10 before the fix): the run decided again on',
    '  inputs that came in another order, its append met the batch it had stored at that place, and the run',
    '  failed as divergent. Now the append returns that batch (same run, same head), the workflow folds it and',
    '  decides again on top of it, and the update that had decided it is answered as recorded when its caller',
    '  sends it again (tests/workflows/test_lost_task.py). 0 such failures since.',
    "- **temporalio 1.35's core defers a local activity's result past a query** (1 run in 4 to 8): when a query",
    '  comes with a workflow task and a local activity finishes before the workflow has answered it, the core',
    "  completes the task with the activity's marker and asks for a new task, and hands the result to the",
    '  workflow only with that next task, beside whatever else arrived. Replay hands it over in the first task,',
    '  so the history does not replay (`replay_failed`: "Missing associated machine for LocalActivity(n)"), and',
    "  a run evicted from the worker's cache afterwards is stuck. Seen each time in the core's own debug log",
    '  ("Sending responses to server commands=[RecordMarker] query_responses=[...] force_new_wft=true", then',
    '  "jobs: ResolveActivity(m), ResolveActivity(n)"), and in a short script of a workflow with a local',
    '  activity queried while its tasks queue. It is why local appends are off by default: nothing is lost (the',
    '  log holds every event), but a stuck run is no durable workflow.',
]


def write_doc(path: Path = ROOT / "docs" / "reliability.md") -> str:
    rows = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    faults = [r for r in rows if "fault" in r]
    inputs = [r for r in rows if "input" in r]
    lines = [
        "# Reliability",
        "",
        "Written by `make reliability` (RELIABILITY=full: `pytest -m slow tests/reliability`, then this file is",
        "rendered from the figures each scenario recorded in out/reliability/).",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        "",
        "## Faults",
        "",
        "Each scenario drives complaints down every lifecycle path at once (valid, partially valid, invalid and",
        "stays, invalid and leaves, withdrawn, reopened; bursts of concurrent decisions where named), with every",
        "decision sent under an idempotency key and retried until it lands. **Lost**: a complaint that did not",
        "reach its path's end or lacks an event its path writes. **Duplicated**: an event beyond its path's.",
        "**verify**: the exit code of `complaints verify --all` (chains, log against each workflow's history,",
        "fold against state, replay, checkpoints) run afterwards in its own process.",
        "",
        "**secrets logged**: the stack's keys and token, and every customer's name, email and phone from",
        "examples/, looked for in every log of the run (workers, Temporal server) and the auditor's output.",
        "",
        "| fault | scale | complaints | events | lost | duplicated | verify | secrets logged | seconds "
        "| what was done |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in faults:
        secrets = len(r["secrets_in_logs"]) if "secrets_in_logs" in r else "not checked"
        lines.append(f"| {r['fault']} | {'full' if r.get('full') else 'fast'} | {r['complaints']} | {r['events']} | "
                     f"{r['lost']} | {r['duplicated']} | {r['verify_exit']} | {secrets} | "
                     f"{r['seconds']} | {r['notes']} |")
    lines += ["", *LOCAL_APPENDS]
    lines += [
        "",
        "## Hostile input",
        "",
        "Malformed intakes and decisions generated with hypothesis, sent through each door. **Accepted** counts",
        "bad inputs that started a workflow, wrote an event, or reached history; it must be 0.",
        "",
        "| door | inputs | refused with field errors | accepted bad inputs | events written |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in inputs:
        lines.append(f"| {r['input']} | {r['inputs']} | {r['refused']} | {r['accepted']} | {r['events_written']} |")
    lines += [
        "",
        "## Security",
        "",
        "Checked by `make test` (and so by every CI run), each against the real server:",
        "",
        "| check | test |",
        "|---|---|",
        "| the application role cannot UPDATE, DELETE, TRUNCATE, ALTER or DROP the log; even the owner cannot "
        "UPDATE, DELETE or TRUNCATE it | tests/eventlog/test_guards.py |",
        "| `temporal workflow show --output json` holds no plaintext personal data from the intake | "
        "tests/codec/test_encryption.py::test_the_raw_history_holds_no_personal_data_from_the_intake |",
        "| the codec server refuses a request without its token, and a payload under an unknown key | "
        "tests/codec/test_server.py |",
        "| no secret and no personal data in any log of a run | the *secrets logged* column above |",
        "| every forged start and decision refused with nothing written: handed-in state or options, another "
        "complaint's id, a restart, no/expired/tampered/untrusted token, the wrong role, plaintext input | "
        "tests/workflows/test_perimeter.py, tests/e2e/test_temporal_cli.py |",
        "| the application role writes only through its functions (no INSERT around the append function, no "
        "planted migration or checkpoint, no mass erasure); sealer and eraser do their one thing; the superuser "
        "needs its password | tests/eventlog/test_privileges.py |",
        "| a checkpoint or bundle is verified only against a trusted key (C2SP signed note); seal refuses a "
        "planted row | tests/audit/test_checkpoints.py |",
        "| the codec server bounds body size, time, headers and concurrency; no token on a command line | "
        "tests/codec/test_server.py |",
        "| each compose service holds only its own secrets; ports on 127.0.0.1; a read-only UI | "
        "tests/deploy/test_compose.py |",
    ]
    text = "\n".join(lines) + "\n"
    kept = _section(path, "## Verify on a real system")
    if kept:  # measured by `make test`, not by this run: carried over as it stands
        at = text.index("## Local appends") if "## Local appends" in text else len(text)
        text = text[:at] + kept + "\n" + text[at:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def _section(path: Path, heading: str) -> str:
    """The section under ``heading`` in the file as it stands (up to the next heading), or ''."""
    if not path.exists():
        return ""
    text = path.read_text()
    if heading not in text:
        return ""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end + 1]


if __name__ == "__main__":
    print(write_doc())
