/**
 * A PayloadCodec that asks the project's codec server to encrypt and decrypt payloads.
 *
 * The keys never leave the codec server: this process sends it payloads and gets back sealed ones
 * (`binary/encrypted`, AES-GCM), and the other way round for results, query answers and failure details.
 * The wire format is the one the Temporal UI and the `temporal` CLI use: `POST <endpoint>/encode` and
 * `POST <endpoint>/decode` with `{"payloads": [...]}` in protobuf JSON (bytes as base64), and the
 * `Authorization` header. It is configured by the same variables as the `temporal` CLI:
 * TEMPORAL_CODEC_ENDPOINT and TEMPORAL_CODEC_AUTH (the whole header value, `Bearer <token>`).
 */
import type { Payload, PayloadCodec } from '@temporalio/common';

/** A payload as protobuf JSON: every bytes field base64. */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function toJson(payload: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(payload.metadata ?? {})) {
    if (value) metadata[key] = Buffer.from(value).toString('base64');
  }
  const json: JsonPayload = { metadata };
  if (payload.data && payload.data.length > 0) json.data = Buffer.from(payload.data).toString('base64');
  return json;
}

function fromJson(json: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [key, value] of Object.entries(json.metadata ?? {})) {
    metadata[key] = new Uint8Array(Buffer.from(value, 'base64'));
  }
  // protobuf JSON leaves out empty fields: no "data" is empty data.
  return { metadata, data: new Uint8Array(Buffer.from(json.data ?? '', 'base64')) };
}

export class RemoteCodec implements PayloadCodec {
  private readonly endpoint: string;

  constructor(
    endpoint: string,
    private readonly authorization?: string,
    private readonly namespace = 'default',
    private readonly timeoutMs = 10_000,
  ) {
    this.endpoint = endpoint.replace(/\/+$/, '');
  }

  /** From TEMPORAL_CODEC_ENDPOINT and TEMPORAL_CODEC_AUTH, as `make up` exports them. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, namespace = 'default'): RemoteCodec {
    const endpoint = env.TEMPORAL_CODEC_ENDPOINT?.trim();
    if (!endpoint) {
      throw new Error('TEMPORAL_CODEC_ENDPOINT is not set: payloads are encrypted, so a client needs the codec server');
    }
    return new RemoteCodec(endpoint, env.TEMPORAL_CODEC_AUTH?.trim() || undefined, namespace);
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return this.post('encode', payloads);
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return this.post('decode', payloads);
  }

  private async post(operation: 'encode' | 'decode', payloads: Payload[]): Promise<Payload[]> {
    if (payloads.length === 0) return payloads;
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-Namespace': this.namespace };
    if (this.authorization) headers.Authorization = this.authorization;
    const response = await fetch(`${this.endpoint}/${operation}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ payloads: payloads.map(toJson) }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!response.ok) {
      const detail = (await response.text()).slice(0, 300);
      throw new Error(`codec server ${operation} failed: HTTP ${response.status} ${detail}`);
    }
    const body = (await response.json()) as { payloads?: JsonPayload[] };
    const result = (body.payloads ?? []).map(fromJson);
    if (result.length !== payloads.length) {
      throw new Error(`codec server ${operation} returned ${result.length} payloads for ${payloads.length}`);
    }
    return result;
  }
}
