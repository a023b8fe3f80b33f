"""Malformed input, generated with hypothesis: each value is one valid example spoiled in one way that must
be refused (a required field gone, a wrong type, an extra field, a huge or control-laden string, a lone
surrogate, negative or float money, a date out of range, an unknown enum value)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
VALID_INTAKE: dict[str, Any] = json.loads((EXAMPLES / "faulty-kettle.json").read_text())

REQUIRED = [("complaint_id",), ("customer",), ("customer", "id"), ("customer", "name"), ("contact",), ("channel",),
            ("subject",), ("subject", "kind"), ("subject", "title"), ("description",), ("severity",),
            ("jurisdiction",), ("occurred_at",)]
TEXT = [("description",), ("customer", "name"), ("subject", "title"), ("subject", "reference")]
ENUMS = [("channel",), ("severity",), ("jurisdiction",), ("subject", "kind")]
DATES = [("occurred_at",)]
MONEY = [("subject", "value", "amount_minor")]
NOT_STR = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                    st.lists(st.integers(), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
CONTROL = st.sampled_from([chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 127, 0x85]])
LONE_SURROGATE = "\\ud800"  # as JSON text: an escape that decodes to half a character


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _del(data: dict[str, Any], path: tuple[str, ...]) -> None:
    for key in path[:-1]:
        data = data[key]
    del data[path[-1]]


@st.composite
def bad_intakes(draw: st.DrawFn) -> bytes:
    data = copy.deepcopy(VALID_INTAKE)
    data["complaint_id"] = f"H-{draw(st.integers(0, 10**9))}"
    kind = draw(st.sampled_from(["missing", "wrong_type", "extra", "huge", "control", "surrogate", "enum",
                                 "money", "date"]))
    if kind == "missing":
        _del(data, draw(st.sampled_from(REQUIRED)))
    elif kind == "wrong_type":
        _set(data, draw(st.sampled_from([*TEXT[:3], *ENUMS, *DATES])), draw(NOT_STR))
    elif kind == "extra":
        where = draw(st.sampled_from([(), ("customer",), ("contact",), ("subject",)]))
        target = data
        for key in where:
            target = target[key]
        target[draw(st.sampled_from(["priority", "admin", "__proto__", "id_", "x"]))] = draw(st.text(max_size=5))
    elif kind == "huge":
        _set(data, draw(st.sampled_from(TEXT)), "x" * draw(st.integers(20_001, 60_000)))
    elif kind == "control":
        path = draw(st.sampled_from(TEXT))
        _set(data, path, "before" + draw(CONTROL) + "after")
    elif kind == "enum":
        _set(data, draw(st.sampled_from(ENUMS)), draw(st.text(min_size=1, max_size=12).filter(
            lambda t: t not in {"social", "email", "phone", "web", "in_person", "low", "medium", "high", "critical",
                                "order", "product", "service", "payment"} and len(t) != 2)))
    elif kind == "money":
        _set(data, MONEY[0], draw(st.one_of(st.integers(max_value=-1), st.floats(allow_nan=False,
                                                                                  allow_infinity=False))))
    elif kind == "date":
        _set(data, DATES[0], draw(st.sampled_from(["1899-12-31T00:00:00Z", "2230-01-01T00:00:00Z",
                                                    "2026-11-10T09:30:00", "yesterday", "2026-13-45T00:00:00Z"])))
    text = json.dumps(data, ensure_ascii=False)
    if kind == "surrogate":
        text = text.replace("stopped working", "stopped " + LONE_SURROGATE + "working", 1)
    return text.encode("utf-8")


VALID_DECISIONS: dict[str, dict[str, Any]] = {
    p.stem: json.loads(p.read_text()) for p in (EXAMPLES / "updates").glob("*.json") if "-" not in p.stem
}


@st.composite
def bad_decisions(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(VALID_DECISIONS)))
    data = copy.deepcopy(VALID_DECISIONS[name])
    kind = draw(st.sampled_from(["extra", "wrong_by", "wrong_type", "control", "huge"]))
    fields = [k for k in data if k != "by"]
    if kind == "extra":
        data[draw(st.sampled_from(["sql", "admin", "verdict_", "stage"]))] = "'; DROP TABLE complaint_events; --"
    elif kind == "wrong_by":
        data["by"] = draw(st.sampled_from(["", "Robert'); --", "a" * 200, "agent:", " customer"]))
    elif kind == "wrong_type":
        data[draw(st.sampled_from(fields))] = draw(st.one_of(st.lists(st.integers(), min_size=1, max_size=2),
                                                             st.dictionaries(st.just("k"), st.integers(), min_size=1)))
    elif kind == "control":
        texts = [k for k, v in data.items() if isinstance(v, str) and k != "by"]
        data[draw(st.sampled_from(texts))] = "bad" + draw(CONTROL.filter(lambda c: c not in "\t\n\r"))
    elif kind == "huge":
        texts = [k for k, v in data.items() if isinstance(v, str) and k not in ("by",)]
        data[draw(st.sampled_from(texts))] = "y" * 20_001
    return name, json.dumps(data, ensure_ascii=False).encode("utf-8")


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """n distinct values from a strategy, the same ones every run (derandomized)."""
    found: list[Any] = []

    @settings(max_examples=n * 3, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        if value not in found and len(found) < n:
            found.append(value)

    collect()
    return found
