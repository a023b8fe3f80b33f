"""The JSON contract: every example validates against its schema, and `complaints schema` covers them all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from domain import commands as cmd
from domain.intake import ComplaintIntake

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_example_complaint_is_a_valid_intake(path: Path) -> None:
    ComplaintIntake.model_validate_json(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", sorted((EXAMPLES / "updates").glob("*.json")), ids=lambda p: p.name)
def test_every_example_decision_is_valid_for_its_update(path: Path) -> None:
    name = path.stem.split("-")[0]
    assert name in cmd.COMMANDS, f"{path.name} names no update"
    cmd.COMMANDS[name].model_validate_json(path.read_text(encoding="utf-8"))


def test_there_is_an_example_for_every_update() -> None:
    names = {p.stem.split("-")[0] for p in (EXAMPLES / "updates").glob("*.json")}
    assert names == set(cmd.COMMANDS)


def test_complaints_schema_prints_the_intake_and_every_update() -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "schema"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    schemas = json.loads(done.stdout)
    assert set(schemas) == {"intake", "errors", *cmd.COMMANDS}
    assert schemas["intake"]["additionalProperties"] is False
    assert "customer" in schemas["intake"]["required"]
    assert schemas["record_follow_up"]["properties"]["satisfaction"]["maximum"] == 5
