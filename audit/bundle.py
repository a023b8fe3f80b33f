"""Evidence bundles: one complaint's events with the newest signed checkpoint covering them and a Merkle
proof that its chain head is under that checkpoint's root. Verifiable with no server at all.

A bundle is written as canonical JSON (sorted keys, no insignificant white space), and a reader refuses
one that is not, so every byte of the file is significant: each is covered by an event hash, the
Merkle proof or the checkpoint's signature, or is structure whose change breaks parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, ValidationError

from audit import checkpoints as cp
from domain import merkle
from domain.chain import Break, Recorded, canonical_json, check_chain
from eventlog.store import to_record

FORMAT: Final = "complaints-bundle/1"


class Proof(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int
    index: int
    size: int
    path: list[str]


class Bundle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["complaints-bundle/1"]
    complaint_id: str
    events: list[Recorded]
    checkpoint: cp.Checkpoint | None
    proof: Proof | None

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


async def export(pool: asyncpg.Pool, complaint_id: str) -> Bundle:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM complaint_events WHERE complaint_id = $1 ORDER BY sequence",
                                complaint_id)
        if not rows:
            raise LookupError(f"the log has no events of complaint {complaint_id!r}")
        # The newest checkpoint that seals the complaint's first event (below its horizon; or, sealed before
        # horizons, at or after its position).
        stored = await conn.fetchrow(
            "SELECT c.* FROM complaint_checkpoints c, complaint_events e"
            " WHERE e.complaint_id = $1 AND e.sequence = 1 AND CASE WHEN c.horizon IS NULL"
            " THEN e.position <= c.position ELSE e.tx < c.horizon::text::xid8 END"
            " ORDER BY c.position DESC LIMIT 1", complaint_id)
        checkpoint = proof = None
        if stored is not None:
            checkpoint = cp.Checkpoint(**{**dict(stored), "root": stored["root"].strip()})
            heads, _ = await cp.heads_at(conn, checkpoint)
            index = next(i for i, h in enumerate(heads) if h[0] == complaint_id)
            leaves = [merkle.leaf_hash(*h) for h in heads]
            proof = Proof(sequence=heads[index][1], index=index, size=len(leaves),
                          path=[p.hex() for p in merkle.proof(leaves, index)])
    return Bundle(format=FORMAT, complaint_id=complaint_id, events=[to_record(r) for r in rows],
                  checkpoint=checkpoint, proof=proof)


@dataclass
class BundleCheck:
    complaint_id: str = "?"
    events: int = 0
    sealed_upto: int = 0
    breaks: list[Break] = field(default_factory=list)
    #: Whether the checkpoint's signature was checked against a key the auditor trusts. Without one the
    #: bundle is not "verified": anyone can sign a made-up bundle with a fresh key.
    signature_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify(data: bytes, trusted_public_key: str | None = None) -> BundleCheck:
    """Check a bundle offline: canonical form, the chain, the proof of its head, and the signature."""
    result = BundleCheck()

    def broken(kind: str, detail: str, sequence: int = 0) -> BundleCheck:
        result.breaks.append(Break(complaint_id=result.complaint_id, sequence=sequence, kind=kind, detail=detail))
        return result

    try:
        bundle = Bundle.model_validate_json(data)
    except ValidationError as error:
        return broken("bundle_unreadable", f"not a {FORMAT} file: {error.error_count()} problem(s), first: "
                                           f"{error.errors()[0]['msg']} at {error.errors()[0]['loc']}")
    result.complaint_id, result.events = bundle.complaint_id, len(bundle.events)
    if bundle.to_bytes() != data:
        return broken("bundle_not_canonical", "the file is not in the canonical form it was written in")
    _, result.breaks = check_chain(bundle.complaint_id, bundle.events)
    if bundle.checkpoint is None or bundle.proof is None:
        return broken("unsealed", "no signed checkpoint covers these events (run `complaints seal`, then export)")
    checkpoint, proof = bundle.checkpoint, bundle.proof
    status = checkpoint.signature_status(trusted_public_key)
    result.signature_checked = status is not cp.Signature.unchecked
    if status is cp.Signature.bad:
        broken("checkpoint_signature", "the checkpoint's signature does not hold with the trusted key")
    sealed = next((e for e in bundle.events if e.sequence == proof.sequence), None)
    if sealed is None:
        return broken("proof_mismatch", f"the proof is for #{proof.sequence}, which the bundle lacks", proof.sequence)
    try:
        computed = merkle.root_from_proof(merkle.leaf_hash(bundle.complaint_id, sealed.sequence, sealed.hash),
                                          proof.index, proof.size, [bytes.fromhex(p) for p in proof.path])
    except ValueError as error:
        return broken("proof_mismatch", str(error), proof.sequence)
    if computed.hex() != checkpoint.root or proof.size != checkpoint.complaints:
        broken("proof_mismatch", f"head #{sealed.sequence} is not under the checkpoint's root", proof.sequence)
    result.sealed_upto = sealed.sequence
    return result
