"""The workflow's input: the contract a backend (or the ``temporal`` CLI) starts a complaint with.

Kept out of the workflow module and imported passed through the sandbox: pydantic classes defined in a
workflow module are built again for every run (and kept by every cached run), which cost both
throughput and memory (see docs/benchmarks.md)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, RootModel, Tag

from domain.complaint import Complaint
from domain.intake import ComplaintIntake


class ComplaintWorkflowOptions(BaseModel):
    """How the workflow runs (not what the complaint is). ``resume`` carries the folded state across
    continue-as-new; the chain head travels inside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_history_events: int = Field(default=8_000, ge=100)
    # With backoff from 2 s to a minute, ten attempts span about five minutes: a provider (or our own
    # database) away for a while is waited out; one that keeps refusing escalates to a supervisor.
    fulfilment_attempts: int = Field(default=10, ge=1)
    # Appends as local activities (run in the workflow task, recorded as markers): faster, measured by
    # `make bench`, but not safe to default to. A local activity's input is not in history before it runs,
    # so a worker killed between the append and the end of its workflow task re-runs it with a new
    # workflow.now(): the log refuses the different batch at the same place as divergent (docs/benchmarks.md).
    local_appends: bool = False
    resume: Complaint | None = None


class ComplaintRun(BaseModel):
    """Across continue-as-new, the state carried over. Earlier runs carried the whole intake too (with the
    customer's name and contact, which then outlived an erasure in every continued run's input); a run now
    carries the folded state alone, whose personal fields are sealed with the customer's key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intake: ComplaintIntake | None = None
    options: ComplaintWorkflowOptions = ComplaintWorkflowOptions()


def _shape(value: Any) -> str:
    if isinstance(value, ComplaintRun) or (isinstance(value, dict) and ("intake" in value or "options" in value)):
        return "run"
    return "intake"


class ComplaintStart(
    RootModel[Annotated[Annotated[ComplaintIntake, Tag("intake")] | Annotated[ComplaintRun, Tag("run")],
                        Discriminator(_shape)]]
):
    """The workflow's one input (the SDK types a run's arguments only when their count matches, and the
    ``temporal`` CLI sends one): a bare complaint intake, as backends send it, or a ComplaintRun."""

    #: Field errors are named as in the intake (``customer.id``), not by this wrapper's union tag.
    error_root: ClassVar[str] = "intake"
    #: Set by the worker's converter when the input reached Temporal unencrypted (see codec.encryption).
    _plaintext: bool = PrivateAttr(default=False)

    @property
    def plaintext(self) -> bool:
        return self._plaintext

    @property
    def continuation(self) -> bool:
        """Whether this is a run's state handed on by continue-as-new (never a caller's start)."""
        return isinstance(self.root, ComplaintRun)

    def as_run(self) -> ComplaintRun:
        return self.root if isinstance(self.root, ComplaintRun) else ComplaintRun(intake=self.root)
