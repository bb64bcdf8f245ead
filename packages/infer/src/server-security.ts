// What `OpenAIServer` enforces against untrusted network clients: request limits, timeouts of slow clients, the
// connection cap and the API key. The defaults are documented in SECURITY.md (repo root) and the package README.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { InferError } from './errors.js';

/** Limits of what one request may ask and of the connections; beyond them the server answers 4xx/503, never 500. */
export interface ServerLimits {
  /** Largest request body in bytes (413 beyond); default 4 MiB. */
  maxBodyBytes: number;
  /**
   * Most characters of prompt text in one request (all prompts of a completions request, all message contents of a
   * chat request together; 400 beyond), checked before anything is tokenized; default 16 × the model length.
   */
  maxPromptChars: number;
  /** Largest `max_tokens`; default the model's max_position_embeddings (prompt + max_tokens must fit it too). */
  maxTokens: number;
  /** Largest `n`; default 16. */
  maxN: number;
  /** Largest `logprobs` (completions) / `top_logprobs` (chat); default 20, as vLLM's max_logprobs. */
  maxLogprobs: number;
  /** Most prompts in one completions request; default 256. */
  maxPrompts: number;
  /** Most `stop` strings and most `stop_token_ids` of one request; default 64 (OpenAI allows 4). */
  maxStop: number;
  /** Requests waiting to join the batch beyond which new ones get 503 `overloaded` with Retry-After; default 4096. */
  maxWaiting: number;
  /**
   * Open TCP connections served at once; default 512. A connection beyond it gets its request answered 503
   * `too_many_connections` (Retry-After, then closed); beyond twice it, new connections are closed unanswered.
   */
  maxConnections: number;
  /** Time for a client to send a request's headers (slow clients get 408, then the connection is closed); default 10 s. */
  headersTimeoutMs: number;
  /** Time for a client to send a whole request, body included (408 beyond); default 30 s. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open; default 5 s. */
  keepAliveTimeoutMs: number;
}

/** The default limits for a model of length `maxPositionEmbeddings`. */
export function defaultLimits(maxPositionEmbeddings: number): ServerLimits {
  return {
    maxBodyBytes: 4 << 20,
    maxPromptChars: 16 * maxPositionEmbeddings,
    maxTokens: maxPositionEmbeddings,
    maxN: 16,
    maxLogprobs: 20,
    maxPrompts: 256,
    maxStop: 64,
    maxWaiting: 4096,
    maxConnections: 512,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 5_000,
  };
}

/** The limits in force: the defaults overridden by `given`, each checked (a positive integer; timeouts in order). */
export function resolveLimits(
  given: Partial<ServerLimits> | undefined,
  maxPositionEmbeddings: number,
): ServerLimits {
  const limits = { ...defaultLimits(maxPositionEmbeddings) };
  for (const [k, v] of Object.entries(given ?? {})) {
    if (v === undefined) continue;
    if (!Object.hasOwn(limits, k)) {
      throw new InferError('SERVER_BAD_LIMIT', `unknown server limit ${JSON.stringify(k)}`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new InferError(
        'SERVER_BAD_LIMIT',
        `server limit ${k} must be a positive integer, got ${String(v)}`,
      );
    }
    (limits as unknown as Record<string, number>)[k] = v;
  }
  // Only a request timeout given: the headers' one is cut to it.
  if (given?.headersTimeoutMs === undefined) {
    limits.headersTimeoutMs = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new InferError(
      'SERVER_BAD_LIMIT',
      `server limit headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed requestTimeoutMs (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

/**
 * A check of the `Authorization: Bearer KEY` header against the server's key in constant time: both sides are
 * hashed (SHA-256) and the digests compared with `timingSafeEqual`, so neither the key's length nor its content
 * shows in the time taken. The key itself is kept only as its digest.
 */
export class ApiKeyCheck {
  private readonly digest: Buffer;

  constructor(key: string) {
    if (typeof key !== 'string' || key.length === 0) {
      throw new InferError('SERVER_BAD_API_KEY', 'the server API key must be a non-empty string');
    }
    if (/\s/.test(key)) {
      throw new InferError('SERVER_BAD_API_KEY', 'the server API key must not contain white space');
    }
    this.digest = sha256(key);
  }

  /** Whether an `Authorization` header value carries the key. */
  matches(header: string | string[] | undefined): boolean {
    const value = Array.isArray(header) ? header[0] : header;
    const m = typeof value === 'string' ? /^Bearer +(\S+) *$/i.exec(value) : null;
    // Hash something even without a token, so a missing header costs the same as a wrong one.
    const given = sha256(m ? m[1] : '');
    return timingSafeEqual(given, this.digest) && m !== null;
  }
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Writes a whole HTTP/1.1 response with OpenAI's error JSON straight to a socket whose request never reached the
 * handler (a parse error, a timeout), then closes it. Nothing is written once a response has begun.
 */
export function refuseOnSocket(
  socket: Socket,
  status: number,
  reason: string,
  body: { error: { message: string; type: string; param: null; code: string } },
): void {
  const message = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || message?.headersSent) {
    socket.destroy();
    return;
  }
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
      `Connection: close\r\n\r\n${text}`,
  );
  // A client that does not read its answer does not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}
