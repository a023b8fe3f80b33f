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
        "Python process is the bottleneck. The mail relay the workers send through runs in a process of its "
        "own, as a relay does in production (in the measured process, serving SMTP and filing mail took about "
        "8% of its samples under py-spy; by hand, 0.83 against 0.79 of bare with it apart, one run of 2 rounds). "
        "Of what is left, building each email with the standard library's header classes takes about 4%. "
        "Runs on this 2-core machine have given 0.77 to 0.87 against the "
        "bare workflow and 1.27x to 1.45x local against activity appends: both goals lie within the "
        "run-to-run noise, so one run may miss them."
    ),
    "Latency": (
        "a submit is acknowledged after two activities (deadlines, then the append of the intake batch); a "
        "decision after its append (an assessment also asks for a remedy quote first, still a remote activity: "
        "as a local one, a slow catalogue would hold the workflow task, and the clock's timers, for as long as "
        "it takes). The first decision is sent as soon as the submit returns, so it also waits for the intake's "
        "work to finish. Under the run's load (20 complaints at once, one Python process for the worker and "
        "the starters) both paths' latencies are mostly the worker's queue, which local appends shorten less "
        "than they shorten the path itself."
    ),
    "Appends": (
        "every append is one call of a PL/pgSQL function that checks the batch continues the stored chain "
        "and is not a divergent retry. There is no global lock any more: each row records its transaction, "
        "and readers in global order read below the oldest transaction still running (migration 009), so "
        "appends to different complaints proceed side by side; they share one advisory lock in shared mode, "
        "which an erasure takes exclusively. An append no longer waits for its NOTIFY (one in flight per "
        "store, coalesced). Measured on this machine with a scratch database: a function reduced to its "
        "insert gave about 0.85 of raw at 32 complaints at once but still about 0.7 at 8, where the Python "
        "side limits (each append checks its batch's hashes again and asyncpg encodes nine arrays, element by "
        "element); dropping the indexes the raw table lacks changed nothing measurable. The raw baseline "
        "inserts the same rows with none of the checks. The lever \"the log's table alone\" inserts the raw "
        "baseline's rows into complaint_events itself: its five indexes and its transaction column bound what "
        "any append function can reach (by hand, between 0.6 and 0.85 of raw from run to run at 8 at once; "
        "server CPU per event, read from /proc for every PostgreSQL process: about 59 microseconds raw, 81 "
        "into the table, 88 through a function that only inserts, 110 to 116 through the append function). "
        "An append function taking the first sequence, the first link and one time instead of three arrays, "
        "with the chain check folded into the insert, saved about 5 client microseconds per event and no "
        "server time measurable above that noise: not kept."
    ),
    "Chain check": (
        "rows are checked as verify reads them (domain.chain.Chains): for each row that continues its "
        "complaint's chain, one canonicalisation (orjson, sorted keys) and one sha256; nothing is built or "
        "counted per row, and the record-by-record walker runs only to name the breaks of a chain that does "
        "not hold. The readers have PostgreSQL spell each row's time as the hash covers it (formatting an "
        "instant cost Python about a microsecond, as much as hashing an event); a wrong spelling only sends "
        "the complaint to the walker, which recomputes from the columns. What remains above hashing is the "
        "canonical bytes (about 0.7 microseconds for the ~670-byte events of a real complaint) and the loop."
    ),
    "verify --all and report": (
        "both split the complaints into ranges of their ids (from a 1% sample of a large table) and read each "
        "range along the primary key in a process of its own (one per core, COMPLAINTS_READ_PROCESSES), with "
        "nothing to stitch: a complaint's events are all in one part (by a hash of the id, every part had "
        "scanned and sorted the whole table; verify --all at 1M events went from about 11.5 to 8 s on a slower "
        "machine). The cycle collector is paused while rows pass. verify checks rows without a model per row. "
        "The report folds rows through the domain without a record per row, in place (domain.complaint.Folding: "
        "the states it owns are changed field by field, heads kept as pairs; callgrind: 93,000 instructions "
        "per event, 115,000 when each step copied the state and built a head), copies deadlines without "
        "pydantic's generic copying and counts business days by whole weeks: what remains is each event parsed "
        "by its pydantic model (a quarter of a step) and applied, which bounds it on two cores. "
        "The live report (audit/live.py) answers from figures a consumer keeps, folding each "
        "event once, as it is appended. verify --since-checkpoint costs what the new events cost, plus what "
        "does not shrink: the command's start-up (about 0.5 s: the CLI, pydantic and the models; Temporal's SDK "
        "is no longer imported by a command of the log alone, which saved about a third), reading the kept "
        "state (every complaint's head at the checkpoint, kept as three columns: a tenth of what a mapping of "
        "pairs cost to read) and one lookup per complaint the checkpoint sealed (every sealed head still "
        "stored with its hash, looked up while the new events are checked). The hash rides in the primary "
        "key's index (migration 014), so a lookup is an index-only scan: 62,500 heads took about 0.4 s "
        "instead of 0.95 s, when each read a heap page."
    ),
    "Memory": (
        "what a cached complaint costs is mostly the SDK core's, in Rust: heaptrack, run over a worker holding "
        "400 cached complaints, put 85 kB of each in sdk-core (the slot map of its state machines, one per "
        "command the run ever issued; its command queues; the last history update it applied) and 12 kB in "
        "the Python bridge, against about 17 kB of Python objects (tracemalloc: the workflow object with its "
        "folded state and intake, its asyncio tasks, the sandbox's per-run globals). So commands are what "
        "cost: new runs record one patch marker instead of four (each also upserted the change-version search "
        "attribute), six commands fewer. The workflow modules are passed through the sandbox (a per-run import "
        "cost 180 kB); replays keep the strict per-run import. Complaints wait days between human steps, so "
        "the worker caches 500 (COMPLAINTS_WORKFLOW_CACHE) rather than the SDK's 1,000: an evicted complaint is "
        "replayed from its history when its timer fires or a decision arrives. glibc's arenas are not the "
        "cause: MALLOC_ARENA_MAX=2 gave the same figure."
    ),
    "Local activities for appends": (
        "kept, off by default (COMPLAINTS_LOCAL_APPENDS=1). A local append commits before its workflow task "
        "completes. When a worker dies in between, the next attempt decides again with a new workflow.now(); "
        "when Temporal loses the task (server killed), the run decides again on inputs that may come in another "
        "order. Either way the append returns the batch the same run stored there from the same head, and the "
        "workflow folds it (and decides again, when it was another decision; the update that made it is answered "
        "as recorded when sent again); another run's batch is still refused as divergent. Off by default because "
        "temporalio 1.35's core, when a query comes with a workflow task and a local activity finishes before the "
        "query is answered, completes the task with the activity's marker but hands the result to the workflow "
        "only with the next task: that history does not replay, and the run is stuck once evicted (seen in 1 of "
        "4-8 runs of the Temporal-SIGKILL fault, with the core's own log; docs/reliability.md)."
    ),
    "Not tried yet": (
        "fewer commands per waiting complaint (search-attribute upserts merged, timers only for the next "
        "deadline) for the memory goal; for the appends goal, no recomputation of hashes the workflow "
        "computed, or a leaner table (fewer indexes: within the run-to-run noise by hand); for the report, a "
        "fold that parses only the events whose changes it reads."
    ),
}
