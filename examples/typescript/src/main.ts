/**
 * A backend driving one complaint from intake to closure with @temporalio/client:
 *
 *   node dist/main.js ../late-delivery.json [COMPLAINT_ID]
 *
 * intake (starts it) -> agent assesses -> customer chooses remedy A -> (the workflow fulfils it and schedules
 * the follow-up) -> agent escalates to a supervisor (the complaint waits for them) -> the supervisor closes
 * it. On the way it shows two refused
 * decisions and their typed errors: an agent closing the complaint (only a supervisor may: `Forbidden`) and
 * a remedy chosen at the wrong stage (`ComplaintRefused`). A refused decision leaves nothing in history or
 * in the event log.
 *
 * Each principal has its own Client (see credentials.ts), so who decides is plain at every call.
 * Progress goes to stderr; stdout gets one line of JSON with the outcome.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  ApplicationFailure,
  Connection,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';

import { RemoteCodec } from './codec';
import { clientsFor, tokensFromEnv, type Principal } from './credentials';

const NAMESPACE = 'default';
/** examples/updates: the update arguments as JSON, shared with the `temporal` CLI walkthrough. */
const UPDATES = path.resolve(__dirname, '..', '..', 'updates');

type Json = Record<string, unknown>;

/** A mistake in how the program was called or configured: its message says it all (exit 2). */
class UsageError extends Error {}

/** The folded complaint, as the `state` query and the workflow's result return it (fields used here). */
interface ComplaintState {
  complaint_id: string;
  stage: string;
  head?: unknown;
  [field: string]: unknown;
}

function log(message: string, ...rest: unknown[]): void {
  console.error(message, ...rest);
}

/** An update's argument from examples/updates, without `by`: who decides comes from the token now. */
function updateArgument(name: string): Json {
  const { by: _ignored, ...argument } = JSON.parse(readFileSync(path.join(UPDATES, `${name}.json`), 'utf8')) as Json;
  return argument;
}

/** Poll the `state` query until the complaint reaches `stage`; fail if the workflow stops first. */
async function waitForStage(handle: WorkflowHandle, stage: string, timeoutMs = 60_000): Promise<ComplaintState> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const state = await handle.query<ComplaintState | null>('state');
      if (state?.stage === stage) return state;
      last = `stage ${state?.stage ?? '(not recorded yet)'}`;
    } catch (error) {
      last = `query failed: ${(error as Error).message}`;
    }
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') throw new Error(`${handle.workflowId} is ${status.name}, never reached ${stage}`);
    if (Date.now() > deadline) {
      throw new Error(`${handle.workflowId} did not reach ${stage} in ${timeoutMs} ms (${last})`);
    }
    await sleep(200);
  }
}

/** Send a decision that must be refused; return the refusal's type (`Forbidden`, `ComplaintRefused`, ...). */
async function expectRefusal(handle: WorkflowHandle, name: string, argument: Json): Promise<string> {
  try {
    await handle.executeUpdate(name, { args: [argument] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure && error.cause.type) {
      log(`  ${name} refused: ${error.cause.type}: ${error.cause.message}`);
      return error.cause.type;
    }
    throw error;
  }
  throw new Error(`${name} was accepted, but it should have been refused`);
}

async function decide(client: Client, workflowId: string, name: string, argument: Json): Promise<ComplaintState> {
  const state = await client.workflow.getHandle(workflowId).executeUpdate<ComplaintState, [Json]>(name, {
    args: [argument],
  });
  log(`  ${name}: now ${state.stage}`);
  return state;
}

async function main(argv: string[]): Promise<void> {
  const [intakeFile, complaintId] = argv;
  if (!intakeFile) throw new UsageError('usage: node dist/main.js INTAKE.json [COMPLAINT_ID]');
  const intake = JSON.parse(readFileSync(intakeFile, 'utf8')) as Json;
  if (complaintId) intake.complaint_id = complaintId;
  const cid = String(intake.complaint_id);
  const workflowId = `complaint-${cid}`;
  const taskQueue = process.env.COMPLAINTS_TASK_QUEUE || 'complaints';

  let codec: RemoteCodec;
  let tokens: Record<Principal, string>;
  try {
    codec = RemoteCodec.fromEnv(process.env, NAMESPACE);
    tokens = tokensFromEnv(process.env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }

  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS || 'localhost:7233' });
  try {
    const as = clientsFor(connection, { payloadCodecs: [codec] }, tokens, NAMESPACE);

    log(`starting ${workflowId} on task queue ${taskQueue}`);
    const handle = await as.intake.workflow.start('ComplaintWorkflow', { workflowId, taskQueue, args: [intake] });
    await waitForStage(handle, 'awaiting_assessment');

    await decide(as.agent, workflowId, 'assess', updateArgument('assess'));
    await decide(as.customer, workflowId, 'choose_remedy', updateArgument('choose_remedy')); // option A
    const seen = await waitForStage(handle, 'awaiting_follow_up'); // the workflow fulfils the remedy itself
    log('state query:', JSON.stringify(seen, null, 2));

    const refusals = [
      // Closing is a supervisor's decision: the agent's token is refused before anything else is checked.
      await expectRefusal(as.agent.workflow.getHandle(workflowId), 'close', updateArgument('close')),
      // The customer may choose a remedy, but not now (it was chosen), and not one that was never offered.
      await expectRefusal(as.customer.workflow.getHandle(workflowId), 'choose_remedy', { option_id: 'Z' }),
    ];

    // An escalation hands the complaint to a supervisor: it waits for them (stage escalated).
    await decide(as.agent, workflowId, 'escalate', updateArgument('escalate'));
    // The supervisor settles it and closes it: only a supervisor may.
    await decide(as.supervisor, workflowId, 'close', updateArgument('close'));

    const result = (await as.supervisor.workflow.getHandle(workflowId).result()) as ComplaintState;
    log(`${workflowId} finished: ${result.stage}, head ${JSON.stringify(result.head)}`);
    console.log(JSON.stringify({ complaint_id: cid, final_stage: result.stage, refusals,
                                 state_stage_seen: seen.stage }));
  } finally {
    await connection.close();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(error.message);
    process.exitCode = 2;
    return;
  }
  if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
    console.error(`update failed: ${error.cause.type}: ${error.cause.message}`);
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
