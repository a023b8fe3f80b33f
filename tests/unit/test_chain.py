"""The hash chain: canonical bytes an auditor can reproduce from what PostgreSQL returns, and every kind of
break named at its sequence."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.chain import (
    GENESIS,
    ROW_FIELDS,
    ChainHead,
    Chains,
    Draft,
    Recorded,
    canonical_bytes,
    canonical_json,
    canonical_time,
    chain,
    check_chain,
    recorded,
)

NOW = datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)


def draft(text: str) -> Draft:
    return Draft(type="MessageLogged", schema_version=1, actor="agent:ana", payload={"text": text, "n": 1})


def records(*texts: str, cid: str = "C-1", head: ChainHead | None = None, at: datetime = NOW) -> list[Recorded]:
    return chain(head or ChainHead(), cid, at, [draft(t) for t in texts])


def breaks(stored: list[Recorded], cid: str = "C-1") -> list[tuple[int, str]]:
    return [(b.sequence, b.kind) for b in check_chain(cid, stored)[1]]


def edited(record: Recorded, **changes: Any) -> Recorded:
    return record.model_copy(update=changes)


# --- numbering and linking ----------------------------------------------------------------------------------


def test_a_chain_numbers_from_one_and_starts_at_genesis() -> None:
    one, two, three = records("a", "b", "c")
    assert GENESIS == "0" * 64 and ChainHead() == ChainHead(sequence=0, hash=GENESIS)
    assert [r.sequence for r in (one, two, three)] == [1, 2, 3]
    assert one.prev_hash == GENESIS


def test_each_record_links_to_the_hash_of_the_one_before() -> None:
    one, two, three = records("a", "b", "c")
    assert two.prev_hash == one.hash and three.prev_hash == two.hash
    assert len({one.hash, two.hash, three.hash}) == 3


def test_a_hash_is_sha256_of_the_previous_hash_and_the_canonical_body() -> None:
    [one] = records("a")
    body = canonical_json({"actor": "agent:ana", "complaint_id": "C-1", "occurred_at": "2026-11-24T09:00:00.123456Z",
                           "payload": {"n": 1, "text": "a"}, "schema_version": 1, "sequence": 1,
                           "type": "MessageLogged"})
    assert one.body() == body
    assert one.hash == hashlib.sha256(bytes(32) + body).hexdigest() == one.computed_hash()


def test_a_chain_continues_from_the_head_it_is_given() -> None:
    first = records("a", "b")
    more = records("c", "d", head=first[-1].head)
    assert [r.sequence for r in more] == [3, 4] and more[0].prev_hash == first[-1].hash
    assert more == records("a", "b", "c", "d")[2:]
    assert check_chain("C-1", first + more) == (more[-1].head, [])


def test_a_whole_chain_checks_and_reaches_its_last_head() -> None:
    stored = records("a", "b", "c")
    assert check_chain("C-1", stored) == (ChainHead(sequence=3, hash=stored[-1].hash), [])


def test_nothing_stored_is_an_empty_chain_at_genesis() -> None:
    assert check_chain("C-1", []) == (ChainHead(), [])
    assert chain(ChainHead(), "C-1", NOW, []) == []


def test_a_draft_of_an_event_carries_its_type_and_schema_version() -> None:
    from domain.events import ComplaintEscalated

    made = Draft.of(ComplaintEscalated(to="supervisor", reason="r", awaits_supervisor=True), "system")
    assert made == Draft(type="ComplaintEscalated", schema_version=1, actor="system",
                         payload={"to": "supervisor", "reason": "r", "awaits_supervisor": True})


# --- determinism --------------------------------------------------------------------------------------------


def test_the_same_events_always_chain_to_the_same_hashes() -> None:
    assert [r.hash for r in records("a", "b", "c")] == [r.hash for r in records("a", "b", "c")]


def test_a_record_gives_its_fields_as_a_stored_row_does() -> None:
    """Recorded.row() is what the chain check and the folds take in place of a row: the columns in ROW_FIELDS
    order, and a record rebuilt from it is the same record."""
    for record in records("a", "b"):
        assert record.row() == tuple(getattr(record, name) for name in ROW_FIELDS)
        assert recorded(record.row()) == record


def test_the_same_instant_in_another_zone_chains_to_the_same_hashes() -> None:
    jakarta = NOW.astimezone(ZoneInfo("Asia/Jakarta"))
    assert canonical_time(jakarta) == "2026-11-24T09:00:00.123456Z"
    assert [r.hash for r in records("a", at=jakarta)] == [r.hash for r in records("a")]


@pytest.mark.parametrize("change", [
    {"cid": "C-2"}, {"at": NOW + timedelta(microseconds=1)}, {"head": ChainHead(sequence=0, hash="1" * 64)},
])
def test_anything_the_hash_covers_changes_it(change: dict[str, Any]) -> None:
    assert records("a", **change)[0].hash != records("a")[0].hash


def test_actor_type_and_schema_version_are_covered_too() -> None:
    base = Draft(type="MessageLogged", schema_version=1, actor="agent:ana", payload={"text": "a"})
    hashes = {chain(ChainHead(), "C-1", NOW, [d])[0].hash for d in (
        base, base.model_copy(update={"actor": "agent:budi"}), base.model_copy(update={"type": "ApologyIssued"}),
        base.model_copy(update={"schema_version": 2}))}
    assert len(hashes) == 4


def test_a_time_without_a_zone_cannot_be_canonicalised() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        canonical_time(datetime(2026, 11, 24, 9, 0))  # noqa: DTZ001 - a naive time, refused


# --- every kind of break --------------------------------------------------------------------------------------


def test_an_edited_payload_breaks_its_own_hash_only() -> None:
    stored = records("a", "b", "c")
    stored[1] = edited(stored[1], payload={"text": "B", "n": 1})
    assert breaks(stored) == [(2, "hash_mismatch")]


@pytest.mark.parametrize("change", [
    {"actor": "agent:mallory"}, {"type": "ApologyIssued"}, {"schema_version": 2},
    {"occurred_at": NOW + timedelta(seconds=1)},
])
def test_an_edited_envelope_breaks_its_own_hash(change: dict[str, Any]) -> None:
    stored = records("a", "b", "c")
    stored[1] = edited(stored[1], **change)
    assert breaks(stored) == [(2, "hash_mismatch")]


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link() -> None:
    stored = records("a", "b", "c")
    forged = edited(stored[1], payload={"text": "B", "n": 1})
    stored[1] = edited(forged, hash=forged.computed_hash())
    assert breaks(stored) == [(3, "broken_link")]


def test_an_edit_rehashed_all_the_way_down_still_differs_from_the_head_the_workflow_holds() -> None:
    original = records("a", "b", "c")
    forged = records("a", "B", "c")  # what a forger who recomputes every later hash would store
    assert check_chain("C-1", forged) == (forged[-1].head, [])
    assert forged[-1].head != original[-1].head  # the second witness (the workflow's head) disagrees


def test_a_deleted_middle_record_is_a_gap_and_a_broken_link() -> None:
    one, _, three = records("a", "b", "c")
    assert breaks([one, three]) == [(3, "gap"), (3, "broken_link")]


def test_a_deleted_first_record_is_a_gap_and_a_broken_link() -> None:
    _, two, three = records("a", "b", "c")
    assert breaks([two, three]) == [(2, "gap"), (2, "broken_link")]


def test_a_record_renumbered_to_hide_a_deletion_breaks_its_hash_and_its_link() -> None:
    one, _, three = records("a", "b", "c")
    assert breaks([one, edited(three, sequence=2)]) == [(2, "broken_link"), (2, "hash_mismatch")]


def test_swapped_records_break_at_both_places() -> None:
    one, two, three = records("a", "b", "c")
    assert breaks([one, three, two]) == [(3, "gap"), (3, "broken_link"), (2, "out_of_order"), (2, "broken_link")]


def test_a_duplicated_record_is_out_of_order() -> None:
    one, two = records("a", "b")
    assert breaks([one, two, two]) == [(2, "out_of_order"), (2, "broken_link")]


def test_a_record_of_another_complaint_is_foreign_and_skipped() -> None:
    one, two = records("a", "b")
    [stranger] = records("x", cid="C-9")
    head, found = check_chain("C-1", [one, stranger, two])
    assert [(b.sequence, b.kind, b.detail) for b in found] == [(1, "foreign_event", "belongs to C-9")]
    assert head == two.head  # the stranger did not move the walk on


def test_a_deleted_last_record_leaves_a_chain_that_looks_whole() -> None:
    """Why the workflow holds the head: the chain alone cannot see a missing tail. `verify` compares the
    head reached here with the head the workflow folded (the second witness), and that comparison is what
    catches a truncated log."""
    stored = records("a", "b", "c")
    reached, found = check_chain("C-1", stored[:2])
    assert found == []
    held_by_the_workflow = stored[-1].head
    assert reached != held_by_the_workflow and reached.sequence == held_by_the_workflow.sequence - 1


def test_a_malformed_hash_is_reported_not_raised() -> None:
    [one] = records("a")
    assert breaks([edited(one, prev_hash="not hex at all")]) == [(1, "broken_link"), (1, "malformed_row")]


def test_a_break_reads_as_complaint_sequence_kind_and_detail() -> None:
    one, _, three = records("a", "b", "c")
    [gap, _] = check_chain("C-1", [one, three])[1]
    assert str(gap) == "C-1 #3: gap: expected sequence 2"


# --- canonical JSON ---------------------------------------------------------------------------------------------


def python_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# Text across the whole of Unicode bar lone surrogates (which no JSON document can carry as UTF-8), with the
# characters JSON encoders disagree about most often mixed in on purpose.
tricky = st.sampled_from(["\x00", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff", '"', "\\", "/", "é",
                          "日本", "🙁", "\U0010ffff", "\n", "\t", "\r", "\b", "\f"])
texts = st.lists(st.text(st.characters(codec="utf-8")) | tricky, max_size=3).map("".join)
# orjson (like a PostgreSQL bigint) stops at 64 bits; payload integers are minor units, far inside.
integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | integers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=25,
)


@given(json_values)
@example({"b": 1, "a": [True, None, "é\x00\u2028"], "": {"z": -1, "A": "🙁"}})
@example("\x00\x01\x1f\x7f")
@example({"amount_minor": 2**63 - 1})
def test_canonical_json_is_python_json_sorted_compact_and_unescaped(value: Any) -> None:
    assert canonical_json(value) == python_json(value)


@given(st.dictionaries(texts, json_values, max_size=5))
def test_a_payload_reparsed_from_stored_json_canonicalises_to_the_same_bytes(payload: dict[str, Any]) -> None:
    """What jsonb does (reorders keys, respaces) cannot change the bytes a hash covers."""
    reordered = json.dumps(dict(reversed(list(payload.items()))), indent=2, ensure_ascii=True)
    assert canonical_json(json.loads(reordered)) == canonical_json(payload)


@given(st.dictionaries(texts, json_values, max_size=4))
def test_a_chained_record_read_back_as_json_still_checks(payload: dict[str, Any]) -> None:
    [stored] = chain(ChainHead(), "C-1", NOW, [Draft(type="MessageLogged", schema_version=1, actor="system",
                                                     payload=payload)])
    read_back = Recorded.model_validate(json.loads(stored.model_dump_json()))
    assert check_chain("C-1", [read_back]) == (stored.head, [])


def test_canonical_json_spells_out_the_examples() -> None:
    assert canonical_json({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"é"]}'.encode()
    assert canonical_json("tab\there\x00") == b'"tab\\there\\u0000"'


def test_a_float_where_an_integer_was_does_not_canonicalise_the_same() -> None:
    assert canonical_json({"amount_minor": 1}) == b'{"amount_minor":1}'
    assert canonical_json({"amount_minor": 1.0}) == b'{"amount_minor":1.0}'


def test_a_float_slipped_into_a_stored_row_breaks_the_chain() -> None:
    stored = chain(ChainHead(), "C-1", NOW, [Draft(type="RemedyOffered", schema_version=1, actor="system",
                                                   payload={"amount_minor": 1})])
    stored[0] = edited(stored[0], payload={"amount_minor": 1.0})
    assert breaks(stored) == [(1, "hash_mismatch")]


def test_an_integer_beyond_64_bits_is_a_malformed_row_not_a_crash() -> None:
    with pytest.raises(TypeError):
        canonical_json(2**64)
    [one] = records("a")
    assert breaks([edited(one, payload={"n": 2**64})]) == [(1, "malformed_row")]


def test_the_canonical_body_leaves_out_hashes() -> None:
    body = canonical_bytes(complaint_id="C-1", sequence=1, type="T", schema_version=1, occurred_at=NOW,
                           actor="system", payload={})
    assert set(json.loads(body)) == {"actor", "complaint_id", "occurred_at", "payload", "schema_version",
                                     "sequence", "type"}


_FIELDS_TO_TAMPER = ("complaint_id", "sequence", "type", "schema_version", "occurred_at", "actor", "payload",
                     "prev_hash", "hash")


@given(st.integers(0, 5), st.sampled_from(_FIELDS_TO_TAMPER), st.booleans(), st.booleans())
def test_the_quick_check_and_the_walker_agree_on_every_chain(at: int, field: str, drop: bool, swap: bool) -> None:
    """check_chain checks a holding chain in a tight loop and walks a broken one record by record: both must
    say the same, head and breaks, whatever was done to the chain."""
    from domain.chain import ChainWalker

    records = chain(ChainHead(), "C-1", NOW, [Draft(type="X", schema_version=1, actor="agent:ana",
                                                     payload={"n": i, "t": NOW.isoformat()}) for i in range(6)])
    changed = {"complaint_id": "C-2", "sequence": 9, "type": "Y", "schema_version": 2,
               "occurred_at": NOW + timedelta(microseconds=1), "actor": "agent:eve", "payload": {"n": -1},
               "prev_hash": "1" * 64, "hash": "f" * 64}[field]
    records[at] = records[at].model_copy(update={field: changed})
    if drop:
        del records[(at + 1) % len(records)]
    if swap and len(records) > 2:
        records[0], records[1] = records[1], records[0]
    walker = ChainWalker("C-1")
    for record in records:
        walker.step(record)
    assert check_chain("C-1", records) == (walker.head, walker.breaks)
    assert walker.breaks  # every change above breaks something


def _row(record: Recorded, spelled: str = "none") -> tuple[Any, ...]:
    """A row as the log's readers give it: the fields, the tx and position columns, and (``spelled`` "right" or
    "wrong") the time as PostgreSQL spells it for the hash."""
    row = (*record.row(), 0, 0)
    if spelled == "none":
        return row
    at = canonical_time(record.occurred_at)
    return (*row, at if spelled == "right" else at.replace("Z", "+00:00"))


@given(st.permutations(range(3)), st.integers(0, 3), st.booleans(), st.sampled_from(["none", "right", "wrong"]),
       st.booleans(), st.integers(0, 12))
def test_chains_read_interleaved_complaints_as_each_one_alone(order: list[int], tampered: int, from_head: bool,
                                                              spelled: str, grouped: bool, cut: int) -> None:
    """Rows of several complaints interleaved as in global order (each in its own sequence order), or each
    complaint's rows together as a part reads them along the primary key, fed in two calls cut anywhere: each
    complaint gets the head, count and breaks check_chain gives it alone, from genesis or from a head verified
    before. A time spelled by the reader is taken as it is; spelled wrong, it costs the quick path, never a
    false break: the complaint is walked from its own columns."""
    logs = {f"C-{n}": records("a", "b", "c", "d", cid=f"C-{n}", at=NOW + timedelta(seconds=n)) for n in range(3)}
    if tampered < 3:
        logs[f"C-{tampered}"][2] = logs[f"C-{tampered}"][2].model_copy(update={"payload": {"text": "forged"}})
    start = 1 if from_head else 0
    heads = {cid: (stored[0].sequence, stored[0].hash) for cid, stored in logs.items()} if from_head else None
    if grouped:
        rows = [_row(logs[f"C-{n}"][i], spelled) for n in order for i in range(start, 4)]
    else:
        rows = [_row(logs[f"C-{n}"][i], spelled) for i in range(start, 4) for n in order]
    chains = Chains(heads)
    chains.feed(rows[:cut])
    chains.feed(rows[cut:])
    for cid, stored in logs.items():
        head, found = check_chain(cid, stored)
        assert chains.head(cid) == head and chains.breaks(cid) == found
        assert chains.events[cid] == 4 - start
    assert chains.heads() == {cid: check_chain(cid, stored)[0] for cid, stored in logs.items()}
