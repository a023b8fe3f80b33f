"""The hash chain: canonical bytes an auditor can reproduce from what PostgreSQL returns, and every kind of
break named at its sequence."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.chain import GENESIS, ChainHead, Draft, Recorded, canonical_json, chain, check_chain

NOW = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=timezone.utc)


def records(*texts: str, cid: str = "C-1") -> list[Recorded]:
    drafts = [Draft(type="MessageLogged", schema_version=1, actor="agent:a", payload={"text": t}) for t in texts]
    return chain(ChainHead(), cid, NOW, drafts)


def test_a_chain_starts_at_genesis_and_links_each_event_to_the_last() -> None:
    one, two, three = records("a", "b", "c")
    assert [r.sequence for r in (one, two, three)] == [1, 2, 3]
    assert one.prev_hash == GENESIS and two.prev_hash == one.hash and three.prev_hash == two.hash
    assert check_chain("C-1", [one, two, three]) == (three.head, [])


def test_the_same_events_always_chain_to_the_same_hashes() -> None:
    assert [r.hash for r in records("a", "b")] == [r.hash for r in records("a", "b")]
    assert records("a")[0].hash != records("a", cid="C-2")[0].hash


def test_an_edited_payload_breaks_its_own_hash() -> None:
    stored = records("a", "b", "c")
    stored[1] = stored[1].model_copy(update={"payload": {"text": "B"}})
    assert [(b.sequence, b.kind) for b in check_chain("C-1", stored)[1]] == [(2, "hash_mismatch")]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link() -> None:
    stored = records("a", "b", "c")
    forged = stored[1].model_copy(update={"payload": {"text": "B"}})
    stored[1] = forged.model_copy(update={"hash": forged.computed_hash()})
    assert [(b.sequence, b.kind) for b in check_chain("C-1", stored)[1]] == [(3, "broken_link")]


def test_a_deleted_middle_event_is_a_gap_and_a_broken_link() -> None:
    one, _, three = records("a", "b", "c")
    assert [(b.sequence, b.kind) for b in check_chain("C-1", [one, three])[1]] == [(3, "gap"), (3, "broken_link")]


def test_swapped_events_break_at_both_places() -> None:
    one, two, three = records("a", "b", "c")
    kinds = {(b.sequence, b.kind) for b in check_chain("C-1", [one, three, two])[1]}
    assert {(3, "gap"), (2, "out_of_order")} <= kinds


def test_an_event_of_another_complaint_is_foreign() -> None:
    assert [b.kind for b in check_chain("C-1", [*records("a"), *records("x", cid="C-9")])[1]] == ["foreign_event"]


def test_a_deleted_last_event_leaves_a_chain_that_looks_whole() -> None:
    """Why the workflow holds the head: the chain alone cannot see a missing tail (verify compares heads)."""
    stored = records("a", "b", "c")
    assert check_chain("C-1", stored[:2]) == (stored[1].head, [])


def test_a_malformed_hash_is_reported_not_raised() -> None:
    [one] = records("a")
    broken = one.model_copy(update={"prev_hash": "not hex at all"})
    assert [b.kind for b in check_chain("C-1", [broken])[1]] == ["broken_link", "malformed_row"]


def test_a_float_where_an_integer_was_does_not_canonicalise_the_same() -> None:
    assert canonical_json({"amount_minor": 1}) != canonical_json({"amount_minor": 1.0})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_is_python_json_sorted_compact_and_unescaped(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_json(value) == expected


@given(st.dictionaries(st.text(max_size=6).filter(lambda k: "\x00" not in k),
                       st.text().filter(lambda t: "\x00" not in t), max_size=5))
def test_a_payload_reparsed_from_json_canonicalises_to_the_same_bytes(payload: dict[str, Any]) -> None:
    """What jsonb does (reorders keys, respaces) cannot change the bytes a hash covers."""
    respaced = json.dumps(dict(reversed(list(payload.items()))), indent=2)
    assert canonical_json(json.loads(respaced)) == canonical_json(payload)
