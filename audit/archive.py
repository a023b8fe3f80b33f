"""The witness that outlives retention: a signed note of what a closed complaint's history witnessed (every
event's hash), recorded before Temporal's retention removes the history, and checked by ``verify`` (also with
``--log-only``, which needs no Temporal: this module imports none of its SDK)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from audit import checkpoints as cp
from domain.chain import Recorded, canonical_time
from settings import workflow_id

if TYPE_CHECKING:
    from audit.witness import Witness

#: The second line of an archived witness's signed note: it can never read as a checkpoint (whose second line
#: is a number).
ARCHIVE_NOTE = "complaint witness archive"


def _digest(hashes: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


class ArchivedWitness(BaseModel):
    """What a closed complaint's history witnessed, kept once Temporal's retention has removed the history:
    every event's hash (the last is the head), the runs, a fingerprint of their histories, signed with the
    seal key as a signed note whose origin names the deployment::

        complaints.example.com/log
        complaint witness archive
        complaint "T-42"
        workflow "complaint-T-42"
        runs 0193a1... 0193b7...
        head 13 9f2c...
        hashes 51d0...                      <- SHA-256 of the hashes, one a line
        history 7e4a...                     <- history_sha256 of the runs
        closed completed
        archived 2026-12-02T01:50:00.000000Z

        — complaints.example.com/log AbCd...

    Recorded by ``archive_closed`` (audit/verify.py) through the sealer's role, only for a complaint that
    verified whole against its history; checked by verify against the key the auditor trusts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint_id: str
    workflow_id: str
    run_ids: list[str]
    final_sequence: int
    final_hash: str
    hashes: list[str]
    closed_as: str
    history_sha256: str
    archived_at: datetime
    public_key: str
    note: str
    #: The database user who stored it (set by the database, not signed).
    recorded_by: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ArchivedWitness:
        data = dict(row)
        data["final_hash"] = str(data["final_hash"]).strip()
        data["history_sha256"] = str(data["history_sha256"]).strip()
        return cls.model_validate(data)

    def row(self) -> dict[str, Any]:
        return self.model_dump(exclude={"recorded_by"})

    def text(self, origin: str) -> str:
        """The note's text as this row says it (under ``origin``)."""
        return (f"{origin}\n{ARCHIVE_NOTE}\ncomplaint {json.dumps(self.complaint_id)}\n"
                f"workflow {json.dumps(self.workflow_id)}\nruns {' '.join(self.run_ids)}\n"
                f"head {len(self.hashes)} {self.hashes[-1] if self.hashes else ''}\nhashes {_digest(self.hashes)}\n"
                f"history {self.history_sha256}\nclosed {self.closed_as}\n"
                f"archived {canonical_time(self.archived_at)}\n")

    @classmethod
    def sign(cls, seen: Witness, logged: Sequence[Recorded], key: Ed25519PrivateKey, origin: str,
             archived_at: datetime) -> ArchivedWitness:
        """Sign what ``seen`` witnessed of ``logged`` (the log, verified whole against it by the caller)."""
        origin = cp.log_origin(origin)
        hashes = [r.hash for r in logged]
        from audit.witness import history_sha256

        unsigned = cls(complaint_id=seen.complaint_id, workflow_id=workflow_id(seen.complaint_id),
                       run_ids=list(seen.run_ids), final_sequence=len(hashes), final_hash=hashes[-1], hashes=hashes,
                       closed_as=seen.closed_as, history_sha256=history_sha256(seen.histories),
                       archived_at=archived_at, public_key=cp.public_key_of(key), note="")
        return unsigned.model_copy(update={"note": cp.sign_note(unsigned.text(origin), origin, key)})

    def signature_status(self, trusted: cp.TrustedKey | str | None) -> cp.Signature:
        """Verified only by a key the auditor trusts, over exactly what the row says; unchecked without one."""
        if trusted is None:
            return cp.Signature.unchecked
        key = cp.TrustedKey.parse(trusted) if isinstance(trusted, str) else trusted
        if self.final_sequence != len(self.hashes) or not self.hashes or self.final_hash != self.hashes[-1]:
            return cp.Signature.bad
        try:
            note = cp.Note.parse(self.note)
            origin = note.lines[0]
            if note.text != self.text(origin) or (key.name is not None and key.name != origin):
                return cp.Signature.bad
            verifier = Ed25519PublicKey.from_public_bytes(key.public_key)
            for name, kid, signature in note.signatures:
                if key.name in (None, name) and kid == cp.key_id(name, key.public_key):
                    verifier.verify(signature, note.text.encode())
                    return cp.Signature.verified if self.public_key == key.raw else cp.Signature.bad
        except (InvalidSignature, ValueError, IndexError):
            return cp.Signature.bad
        return cp.Signature.bad
