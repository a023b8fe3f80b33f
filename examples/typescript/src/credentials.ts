/**
 * Who is asking: a signed token (JWT) in a Temporal header on every call that starts or changes a complaint.
 *
 * The worker reads the header `complaints_token` and takes the actor (`agent:ana`, `supervisor:budi`, ...)
 * from the verified token, never from the update's arguments. The header's value is the token as the
 * default payload converter makes it (`json/plain`, the JSON string). Headers do not go through the codec,
 * so a token is kept in the workflow's history as sent: use short-lived tokens (the worker refuses any that
 * lives longer than 24 hours).
 *
 * One Client per principal keeps it simple: every call made through `clients.agent` is the agent's, every
 * call through `clients.supervisor` the supervisor's. The clients share one Connection, so this costs nothing.
 */
import {
  Client,
  Connection,
  defaultPayloadConverter,
  type DataConverter,
  type Headers,
  type Next,
  type WorkflowClientInterceptor,
  type WorkflowStartInput,
  type WorkflowStartOutput,
  type WorkflowStartUpdateInput,
  type WorkflowStartUpdateOutput,
  type WorkflowStartUpdateWithStartInput,
  type WorkflowStartUpdateWithStartOutput,
} from '@temporalio/client';

export const TOKEN_HEADER = 'complaints_token';

export const PRINCIPALS = ['intake', 'agent', 'customer', 'supervisor'] as const;
export type Principal = (typeof PRINCIPALS)[number];

/** COMPLAINTS_TOKEN_INTAKE, COMPLAINTS_TOKEN_AGENT, ... */
export function tokenEnvName(principal: Principal): string {
  return `COMPLAINTS_TOKEN_${principal.toUpperCase()}`;
}

type Call<K extends keyof WorkflowClientInterceptor> = Next<WorkflowClientInterceptor, K>;

/** Adds the token header to every workflow start and every update made through the client. */
export class CredentialInterceptor implements WorkflowClientInterceptor {
  constructor(private readonly token: string) {}

  private with(headers: Headers): Headers {
    return { ...headers, [TOKEN_HEADER]: defaultPayloadConverter.toPayload(this.token) };
  }

  startWithDetails(input: WorkflowStartInput, next: Call<'startWithDetails'>): Promise<WorkflowStartOutput> {
    return next({ ...input, headers: this.with(input.headers) });
  }

  startUpdate(input: WorkflowStartUpdateInput, next: Call<'startUpdate'>): Promise<WorkflowStartUpdateOutput> {
    return next({ ...input, headers: this.with(input.headers) });
  }

  startUpdateWithStart(input: WorkflowStartUpdateWithStartInput,
                       next: Call<'startUpdateWithStart'>): Promise<WorkflowStartUpdateWithStartOutput> {
    return next({
      ...input,
      workflowStartHeaders: this.with(input.workflowStartHeaders),
      updateHeaders: this.with(input.updateHeaders),
    });
  }
}

/** A Client whose every call carries `token`. */
export function clientWithToken(connection: Connection, dataConverter: DataConverter, token: string,
                                namespace = 'default'): Client {
  return new Client({
    connection,
    namespace,
    dataConverter,
    interceptors: { workflow: [new CredentialInterceptor(token)] },
  });
}

/** Each principal's token, from COMPLAINTS_TOKEN_INTAKE, COMPLAINTS_TOKEN_AGENT, ... */
export function tokensFromEnv(env: NodeJS.ProcessEnv = process.env): Record<Principal, string> {
  const missing = PRINCIPALS.map(tokenEnvName).filter((name) => !env[name]?.trim());
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} not set: issue tokens with `
                    + '`complaints token issue --subject ... --role ...`');
  }
  return Object.fromEntries(PRINCIPALS.map((p) => [p, env[tokenEnvName(p)]!.trim()])) as Record<Principal, string>;
}

/** One Client per principal, over one Connection: `clients.agent` makes the agent's calls, and so on. */
export function clientsFor(connection: Connection, dataConverter: DataConverter, tokens: Record<Principal, string>,
                           namespace = 'default'): Record<Principal, Client> {
  return Object.fromEntries(
    PRINCIPALS.map((p) => [p, clientWithToken(connection, dataConverter, tokens[p], namespace)]),
  ) as Record<Principal, Client>;
}
