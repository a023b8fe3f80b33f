"""A command of the log alone (verify --log-only, report, checkpoints) starts without Temporal's SDK: importing
it cost about half of such a command's run (bench/verification.py, verify --since-checkpoint)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_the_cli_imports_no_temporal_sdk_until_a_command_needs_it() -> None:
    loaded = modules_after("import cli.main")
    assert "cli.audit" in loaded and "audit.verify" in loaded and "audit.archive" in loaded
    assert not {m for m in loaded if m == "temporalio" or m.startswith("temporalio.")}
    assert "starter" not in loaded and "audit.witness" not in loaded

