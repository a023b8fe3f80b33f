"""How to read docs/benchmarks.md, and what bounds each figure: written from profiles and from the levers
measured by the bench, kept beside the code that measures them so that the two change together."""

READING = (
    "Each figure is ours beside a baseline doing the same work without our part, measured in the same run "
    "on the same machine. The ratio reads \"how we compare\": 1 is as good as the baseline, below 1 the share "
    "of the baseline's speed we keep (for times and memory: baseline / ours). Absolute numbers depend on the "
    "machine; the ratios are the figures. Nothing here is asserted by a test."
)

LIMITS: dict[str, str] = {
    "Throughput": (
        "the complaint workflow does the same Temporal work as the bare one (its activities and updates are "
        "counted off a real complaint's history at the start of the run) and more besides: real activity "
        "bodies (each append seals personal fields with the customer's key and runs the log's append "
        "function; deadlines come from holiday calendars), a search-attribute upsert and a details update at "
        "every stage, SLA timers started and cancelled. On two cores the Temporal dev server (SQLite), "
        "PostgreSQL and the one Python process that hosts the worker and the starters share the CPU; the "
        "Python process is the bottleneck. Runs on this 2-core machine have given 0.77 to 0.87 against the "
        "bare workflow and 1.27x to 1.45x local against activity appends: both goals lie within the "
        "run-to-run noise, so one run may miss them."
    ),
    "Latency": (
        "a submit is acknowledged after two activities (deadlines, then the append of the intake batch); a "
        "decision after its append (an assessment also asks for a remedy quote first). The bare workflow runs "
        "the same number of no-op activities, so the difference is the appends' and the workflow code's time."
    ),
    "Appends": (
        "every append is one call of a PL/pgSQL function that checks the batch continues the stored chain "
        "and is not a divergent retry. There is no global lock any more: each row records its transaction, "
        "and readers in global order read below the oldest transaction still running (migration 009), so "
        "appends to different complaints proceed side by side. The raw baseline inserts the same rows with "
        "none of the checks."
    ),
    "Chain check": (
        "rows are checked as verify reads them (domain.chain.Chains): for each row that continues its "
        "complaint's chain, one canonicalisation (orjson, sorted keys) and one sha256, the instant spelled "
        "once per batch; nothing is built per row, and the record-by-record walker runs only to name the "
        "breaks of a chain that does not hold. What remains above hashing is building each event's canonical "
        "bytes (about two microseconds for the ~670-byte events of a real complaint). Storing those bytes "
        "beside each row would leave only the hash, but then either every reader reads the stored bytes "
        "instead of the columns, or PostgreSQL proves per row that the columns say what the bytes say "
        "(parsing each as jsonb: more time on its core than the check saves on ours): not done."
    ),
    "verify --all and report": (
        "both split the complaints into parts by a hash of their id and read each part in a process of its "
        "own (one per core, COMPLAINTS_READ_PROCESSES), with nothing to stitch: a complaint's events are all "
        "in one part. Rows, tuples and dicts read in bulk make no reference cycles, so the cycle collector "
        "is paused while they pass (it had cost as much as the read itself beside a large heap). verify "
        "checks rows without a model per row; the report still turns each row into a record and folds it "
        "through the domain (pydantic events parsed, states copied: ~10 microseconds per event), which bounds "
        "it on two cores. The read baseline runs in a process of its own, as the commands do. The live "
        "report (audit/live.py) answers from figures a consumer keeps, folding each event once, as it is "
        "appended. verify --since-checkpoint costs what the new events cost, plus what does not shrink: "
        "Python's start-up (about a second) and one index lookup per complaint the checkpoint sealed (every "
        "sealed head still stored with its hash); with the full verify now at about ten seconds for a million "
        "events, those fixed costs are more than a tenth of it."
    ),
    "Memory": (
        "the sandbox imported the workflow's module afresh for every run: code objects and functions, about "
        "180 of the 315 kB a cached complaint cost. The workflow modules hold no state (constants, classes "
        "and functions), so a worker now passes them through and its runs share one copy; replays (the saved "
        "histories' replay test, verify's replay) keep the strict per-run import, so workflow code that "
        "reached for the clock or I/O still fails there. What a cached complaint costs now is mostly the "
        "SDK's: the workflow object itself holds about 21 kB (its folded state 14, its intake 6), and a bare "
        "workflow that only sleeps costs about 56 kB per cached run in the same SDK (measured in-process "
        "with the same dev server); the rest is the run's pending timers and handlers as asyncio tasks and "
        "the core's state machines for its history. Complaints wait days between human steps, so the worker "
        "caches 500 (COMPLAINTS_WORKFLOW_CACHE) rather than the SDK's 1,000: an evicted complaint is replayed "
        "from its history when its timer fires or a decision arrives."
    ),
    "Local activities for appends": (
        "kept, on by default. A local activity's input is not in history before it runs: when a worker dies "
        "between the append and the end of its workflow task, the next attempt computes the batch again with "
        "a new workflow.now(). The append now recognises its own run's decision at the same place (same run, "
        "one append of exactly those events, same types and actors) and returns the batch already stored, "
        "which the workflow folds; anything else there is still refused as divergent."
    ),
    "Not tried yet": (
        "fewer asyncio tasks per waiting complaint (one per pending timer and handler) for the memory goal; "
        "a cheaper append function (fewer indexes to maintain per row: the log keeps five, the raw table one) "
        "for the appends goal."
    ),
}
