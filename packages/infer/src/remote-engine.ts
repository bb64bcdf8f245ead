import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type {
  BatchOptions,
  Engine,
  EngineInfo,
  GenerateChoice,
  GenerateOptions,
  GenerateRequest,
  GenerateResult,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  ScoreOptions,
  ScoreRequest,
  ScoreResult,
} from './engine.js';
import { InferError } from './errors.js';
import { RequestError } from './local-engine.js';
import type { TokenLogprob } from './logprobs.js';
import { type SamplingParams, samplingParams } from './params.js';
import { displayUrl, redactSecrets } from './redact.js';
import { Xoshiro128 } from './rng.js';
import { pyRstrip, pyStrip } from './stop.js';

/** A remote server refused or failed a request (after the retries), or lacks a feature the call needs. */
export class RemoteError extends InferError {
  /** HTTP status of the last answer; null for connection errors and timeouts. */
  readonly status: number | null;
  /** The endpoint of the last attempt. */
  readonly endpoint: string | null;
  /** Attempts made. */
  readonly attempts: number;
  constructor(
    code: string,
    message: string,
    extra: { status?: number | null; endpoint?: string | null; attempts?: number; cause?: unknown } = {},
  ) {
    super(code, message, { cause: extra.cause });
    this.name = 'RemoteError';
    this.status = extra.status ?? null;
    this.endpoint = extra.endpoint ?? null;
    this.attempts = extra.attempts ?? 0;
  }
}

export interface BackoffOptions {
  /** Ceiling of the first retry's delay; default 500 ms. */
  initialMs?: number;
  /** Largest delay; default 30 s. */
  maxMs?: number;
  /** Growth per retry; default 2. */
  factor?: number;
}

export interface RemoteEngineOptions {
  /**
   * Base URLs of OpenAI-compatible servers (vLLM, OpenAI, llama.cpp's server, `polyglot infer serve`), e.g.
   * `http://gpu1:8000` or `https://api.openai.com/v1` (`/v1` is appended where missing). Several share the load.
   */
  endpoints: string | string[];
  /** The model name the requests carry; default the first model that the first answering server lists. */
  model?: string;
  /** Sent as a bearer token; default `OPENAI_API_KEY`, else `EMPTY` (vLLM's convention). */
  apiKey?: string;
  /** Requests in flight per endpoint; default 16. */
  concurrency?: number;
  /** Time limit of one attempt in ms (then it counts as failed and is retried); default 600,000. */
  timeoutMs?: number;
  /** Retries after the first attempt of a request (on 408/409/429/5xx, connection errors, timeouts); default 5. */
  retries?: number;
  /** Exponential back-off with full jitter: retry k waits a uniform time in [0, min(maxMs, initialMs·factor^(k-1))]. */
  backoff?: BackoffOptions;
  /** Longest `Retry-After` honoured (longer ones are cut to it); default 60 s. */
  maxRetryAfterMs?: number;
  /** Seed of the generator that draws a seed for each request without one (sent as `seed`); default random. */
  seed?: number | null;
  /**
   * Ask for token ids (vLLM: `return_token_ids`, and `return_tokens_as_token_ids` when scoring) so that results
   * carry `inputIds`/`outputIds`; default false (plain OpenAI servers reject the fields).
   */
  tokenIds?: boolean;
  /**
   * `max_tokens` of scoring requests (echo + logprobs): 0 (only the prompt), 1, or `auto` (default): 0, falling
   * back to 1 for good when the server refuses 0.
   */
  scoreMaxTokens?: 0 | 1 | 'auto';
  /** Extra HTTP headers on every request. */
  headers?: Record<string, string>;
  /** Testing: the jitter's random numbers in [0, 1) and the sleep between attempts. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** One server of the fleet. */
interface Endpoint {
  url: string;
  /** The URL as messages and stats show it: no credentials, no key-like query parameters. */
  shown: string;
  client: OpenAI;
  /** Requests in flight. */
  outstanding: number;
  /** No new request before this time (ms, performance.now()): a Retry-After, or back-off after connection errors. */
  blockedUntil: number;
  /** Failures in a row (reset by a success). */
  failuresInRow: number;
  /** Requests it answered, attempts that failed. */
  served: number;
  failed: number;
}

/** Per-endpoint counters ({@link RemoteEngine.stats}). */
export interface EndpointStats {
  url: string;
  outstanding: number;
  served: number;
  failed: number;
}

const DEFAULTS = {
  concurrency: 16,
  timeoutMs: 600_000,
  retries: 5,
  initialMs: 500,
  maxMs: 30_000,
  factor: 2,
  maxRetryAfterMs: 60_000,
};

/** The v1 base URL of a server address: `/v1` appended unless the path already ends with it. */
export function normalizeBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InferError(
      'REMOTE_BAD_URL',
      `not a URL: ${JSON.stringify(displayUrl(url))} (expected e.g. http://host:8000)`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InferError('REMOTE_BAD_URL', `${displayUrl(url)}: only http and https URLs are supported`);
  }
  const p = u.pathname.replace(/\/+$/, '');
  u.pathname = p.endsWith('/v1') ? p : `${p}/v1`;
  return u.toString().replace(/\/+$/, '');
}

/** Milliseconds a response asks to wait (`retry-after-ms`, `retry-after` in seconds or as an HTTP date), or null. */
export function retryAfterMs(headers: Headers | undefined, nowMs = Date.now()): number | null {
  if (!headers) return null;
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const v = headers.get('retry-after');
  if (v === null) return null;
  const secs = Number(v);
  if (v.trim() !== '' && Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const date = Date.parse(v);
  return Number.isFinite(date) ? Math.max(0, date - nowMs) : null;
}

type Failure =
  | { kind: 'fatal'; status: number | null; message: string }
  | {
      kind: 'retry';
      status: number | null;
      message: string;
      retryAfter: number | null;
      blockEndpoint: boolean;
    };

function classify(e: unknown): Failure {
  if (e instanceof APIConnectionTimeoutError) {
    return { kind: 'retry', status: null, message: 'timed out', retryAfter: null, blockEndpoint: false };
  }
  if (e instanceof APIConnectionError) {
    const cause = (e.cause as Error | undefined)?.message;
    return {
      kind: 'retry',
      status: null,
      message: `connection failed${cause ? ` (${cause})` : ''}`,
      retryAfter: null,
      blockEndpoint: true,
    };
  }
  if (e instanceof APIError && typeof e.status === 'number') {
    const status = e.status;
    const message = `HTTP ${status}: ${e.message.replace(/^\d+\s*/, '')}`;
    if (status === 408 || status === 409 || status === 429 || status >= 500) {
      const after = retryAfterMs(e.headers);
      // A rate limit (or a Retry-After) holds the whole endpoint back; other failures only this request.
      return {
        kind: 'retry',
        status,
        message,
        retryAfter: after,
        blockEndpoint: status === 429 || after !== null,
      };
    }
    return { kind: 'fatal', status, message };
  }
  throw e;
}

const NONE: ReadonlySet<Endpoint> = new Set();

const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An {@link Engine} over OpenAI-compatible servers through the `openai` client: `/v1/completions` for prompts (text
 * or token ids), `/v1/chat/completions` for `messages`, with vLLM's sampling fields (`top_k`, `min_p`,
 * `repetition_penalty`, `min_tokens`, `ignore_eos`, `stop_token_ids` — sent only when not at their defaults, so
 * plain OpenAI servers accept the rest), `seed`, `n`, stop strings and logprobs; scoring and log-likelihood via
 * `/v1/completions` with `echo` + `logprobs` + `max_tokens` 0 (or 1), as vLLM supports.
 *
 * Several endpoints share the load: each request goes to the endpoint with the fewest requests in flight (at most
 * `concurrency` each). A failed attempt (408, 409, 429, 5xx, connection error, timeout) is retried — on another
 * endpoint at once where one is free, else after an exponential back-off with full jitter; a `Retry-After` (or
 * `retry-after-ms`) holds that endpoint back for as long as it says (up to `maxRetryAfterMs`). Other 4xx answers
 * fail at once (`REMOTE_REJECTED`, the server's message quoted); when the retries are spent the error is
 * `REMOTE_FAILED`, naming the endpoint, the attempts and the last failure.
 */
export class RemoteEngine implements Engine {
  readonly info: EngineInfo;
  private readonly endpoints: Endpoint[];
  private readonly concurrency: number;
  private readonly retries: number;
  private readonly backoff: Required<BackoffOptions>;
  private readonly maxRetryAfterMs: number;
  private readonly tokenIds: boolean;
  private scoreMaxTokens: 0 | 1 | 'auto';
  private readonly rng: Xoshiro128;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly waiters: (() => void)[] = [];
  private closed = false;
  /** Redacted from every message (the API key, header values). */
  private secrets: string[] = [];

  private constructor(opts: RemoteEngineOptions, model: string, clients: Endpoint[]) {
    this.endpoints = clients;
    this.concurrency = positive(opts.concurrency ?? DEFAULTS.concurrency, 'concurrency');
    this.retries = nonNegative(opts.retries ?? DEFAULTS.retries, 'retries');
    this.backoff = {
      initialMs: opts.backoff?.initialMs ?? DEFAULTS.initialMs,
      maxMs: opts.backoff?.maxMs ?? DEFAULTS.maxMs,
      factor: opts.backoff?.factor ?? DEFAULTS.factor,
    };
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs;
    this.tokenIds = opts.tokenIds ?? false;
    this.scoreMaxTokens = opts.scoreMaxTokens ?? 'auto';
    this.rng = Xoshiro128.forRequest(opts.seed ?? null);
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? sleepMs;
    this.info = { kind: 'openai', model, backend: null, adapter: null };
  }

  /** Connects to the servers; without `model`, asks them (GET /v1/models, with the retries) for the model served. */
  static async connect(opts: RemoteEngineOptions): Promise<RemoteEngine> {
    const urls = (Array.isArray(opts.endpoints) ? opts.endpoints : [opts.endpoints]).filter(
      (u) => u.trim() !== '',
    );
    if (urls.length === 0) throw new InferError('REMOTE_BAD_URL', 'no endpoint given');
    const timeout = positive(opts.timeoutMs ?? DEFAULTS.timeoutMs, 'timeoutMs');
    const apiKey = opts.apiKey || process.env.OPENAI_API_KEY || 'EMPTY';
    const endpoints: Endpoint[] = urls.map((u) => {
      const url = normalizeBaseUrl(u.trim());
      return {
        url,
        shown: displayUrl(url),
        client: new OpenAI({ baseURL: url, apiKey, maxRetries: 0, timeout, defaultHeaders: opts.headers }),
        outstanding: 0,
        blockedUntil: 0,
        failuresInRow: 0,
        served: 0,
        failed: 0,
      };
    });
    const engine = new RemoteEngine(opts, opts.model ?? '', endpoints);
    // What must never be shown: the key, and the values of the extra headers (they may carry credentials too).
    const credentials = endpoints.map((e) => decodeURIComponent(new URL(e.url).password));
    engine.secrets = [apiKey, ...Object.values(opts.headers ?? {}), ...credentials].filter(
      (s) => s !== '' && s !== 'EMPTY',
    );
    if (opts.model === undefined) {
      const list = await engine.call('GET /v1/models', (c) => c.models.list());
      const first = list.data[0]?.id;
      if (!first)
        throw new RemoteError(
          'REMOTE_NO_MODEL',
          `${endpoints[0].shown}: the server lists no model; pass the model name`,
        );
      (engine.info as { model: string }).model = first;
    }
    return engine;
  }

  /** Per-endpoint counters: requests in flight, answered, failed attempts. */
  get stats(): EndpointStats[] {
    return this.endpoints.map((e) => ({
      url: e.shown,
      outstanding: e.outstanding,
      served: e.served,
      failed: e.failed,
    }));
  }

  /** Generates for every request concurrently (results in request order; `onResult` as each finishes). */
  async generate(reqs: GenerateRequest[], opts: GenerateOptions = {}): Promise<GenerateResult[]> {
    this.checkOpen();
    const prepared = reqs.map((r, i) => this.prepare(r, i));
    const model = this.modelFor(opts);
    return Promise.all(
      prepared.map(async (p, i) => {
        const result = await this.generateOne(reqs[i], p, model);
        opts.onResult?.(i, result);
        return result;
      }),
    );
  }

  /** Log-probabilities of each sequence's tokens, from `echo` + `logprobs` on `/v1/completions`. */
  async score(reqs: ScoreRequest[], opts: ScoreOptions = {}): Promise<ScoreResult[]> {
    this.checkOpen();
    const model = this.modelFor(opts);
    const top = opts.topLogprobs ?? 0;
    reqs.forEach((r, i) => {
      promptOf(r.text, r.inputIds, i, 'text');
    });
    return Promise.all(
      reqs.map(async (r, i) => {
        const prompt = promptOf(r.text, r.inputIds, i, 'text');
        const e = await this.echo(prompt, model, Math.max(top, 0));
        const result: ScoreResult = {
          inputIds: Array.isArray(prompt) ? prompt : e.ids,
          tokenLogprobs: e.logprobs,
          sumLogprob: e.logprobs.reduce((a, b) => a + b, 0),
          tokens: e.tokens,
        };
        if (top > 0) result.topLogprobs = e.top.map((d) => topList(d, top));
        return result;
      }),
    );
  }

  /**
   * lm-evaluation-harness's `loglikelihood` over a server: text requests move the context's trailing whitespace to
   * the continuation and send `context + continuation`; the continuation's tokens are those whose `text_offset` is
   * at or past the context's end. Token-id requests send `contextIds + continuationIds` (contextIds non-empty).
   */
  async loglikelihood(reqs: LoglikelihoodRequest[], opts: BatchOptions = {}): Promise<LoglikelihoodResult[]> {
    this.checkOpen();
    const model = this.modelFor(opts);
    const prepared = reqs.map((r, i) => pairOf(r, i));
    return Promise.all(
      prepared.map(async (p) => {
        const e = await this.echo(p.prompt, model, 1);
        let n: number;
        if (p.continuationTokens !== null) n = p.continuationTokens;
        else {
          if (e.offsets === null) {
            throw new RemoteError(
              'REMOTE_UNSUPPORTED',
              `${model}: the server returns no text_offset with echo + logprobs; send token ids instead of text`,
            );
          }
          // Positions 1.. of the prompt; those starting at or after the context's end are the continuation.
          n = e.offsets.slice(1).filter((o) => o >= p.contextLength).length;
        }
        const lps = n > 0 ? e.logprobs.slice(-n) : [];
        const tops = n > 0 ? e.top.slice(-n) : [];
        return {
          logprob: lps.reduce((a, b) => a + b, 0),
          isGreedy: lps.every((lp, k) => Object.values(tops[k] ?? {}).every((v) => v <= lp)),
          tokens: n,
        };
      }),
    );
  }

  /** Refuses new calls; calls in flight finish. */
  async close(): Promise<void> {
    this.closed = true;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new InferError('ENGINE_CLOSED', 'the engine was closed');
  }

  private modelFor(opts: BatchOptions): string {
    return typeof opts.adapter === 'string' ? opts.adapter : this.info.model;
  }

  private prepare(r: GenerateRequest, i: number): { params: SamplingParams; seed: number; n: number } {
    if (typeof r !== 'object' || r === null) throw new RequestError(i, 'INFER_BAD_REQUEST', 'not an object');
    const given = [r.prompt, r.inputIds, r.messages].filter((v) => v !== undefined).length;
    if (given !== 1) {
      throw new RequestError(i, 'INFER_BAD_REQUEST', 'give exactly one of prompt, inputIds and messages');
    }
    if (r.messages !== undefined && (!Array.isArray(r.messages) || r.messages.length === 0)) {
      throw new RequestError(
        i,
        'INFER_BAD_REQUEST',
        'messages must be a non-empty list of { role, content }',
      );
    }
    if (r.prompt !== undefined || r.inputIds !== undefined) promptOf(r.prompt, r.inputIds, i, 'prompt');
    let params: SamplingParams;
    try {
      params = samplingParams((r.params ?? {}) as Record<string, unknown>);
    } catch (e) {
      throw new RequestError(i, (e as InferError).code ?? 'INFER_BAD_PARAM', (e as Error).message, {
        cause: e,
      });
    }
    const n = r.n ?? 1;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RequestError(
        i,
        'INFER_BAD_PARAM',
        `n must be a positive integer, got ${JSON.stringify(r.n)}`,
      );
    }
    const seed = params.seed ?? this.rng.nextUint32() * 65536 + (this.rng.nextUint32() >>> 16);
    return { params, seed, n };
  }

  private async generateOne(
    r: GenerateRequest,
    p: { params: SamplingParams; seed: number; n: number },
    model: string,
  ): Promise<GenerateResult> {
    const body: Record<string, unknown> = { model, ...wireParams(p.params), seed: p.seed };
    if (p.n > 1) body.n = p.n;
    if (this.tokenIds) body.return_token_ids = true;
    const trim = r.trim ?? true;
    const finish = (text: string) => (trim ? pyStrip(text) : text);
    if (r.messages !== undefined) {
      if (p.params.logprobs !== null) {
        body.logprobs = true;
        if (p.params.logprobs > 0) body.top_logprobs = p.params.logprobs;
      }
      body.messages = r.messages;
      const res = (await this.call('POST /v1/chat/completions', (c) =>
        c.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming),
      )) as OpenAI.ChatCompletion & { prompt_token_ids?: number[] };
      const choices = [...res.choices]
        .sort((a, b) => a.index - b.index)
        .map((c): GenerateChoice => {
          const extra = c as unknown as { stop_reason?: string | number | null; token_ids?: number[] };
          const choice: GenerateChoice = {
            outputIds: extra.token_ids ?? [],
            text: finish(c.message.content ?? ''),
            finishReason: c.finish_reason === 'length' ? 'length' : 'stop',
            stopReason: extra.stop_reason ?? null,
            seed: p.seed,
          };
          if (p.params.logprobs !== null) {
            const content = c.logprobs?.content;
            if (!content) {
              throw new RemoteError(
                'REMOTE_UNSUPPORTED',
                `${model}: the server returned no logprobs for a chat request`,
              );
            }
            choice.tokenLogprobs = content.map((t) => t.logprob);
            if (p.params.logprobs > 0) {
              choice.topLogprobs = content.map((t) =>
                t.top_logprobs.map((x) => ({ token: -1, logprob: x.logprob, text: x.token })),
              );
            }
          }
          return choice;
        });
      return withChoices(res.prompt_token_ids ?? [], choices);
    }
    body.prompt = r.prompt ?? r.inputIds;
    if (p.params.logprobs !== null) body.logprobs = p.params.logprobs;
    const res = (await this.call('POST /v1/completions', (c) =>
      c.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming),
    )) as OpenAI.Completion & { prompt_token_ids?: number[][] | number[] };
    const choices = [...res.choices]
      .sort((a, b) => a.index - b.index)
      .map((c): GenerateChoice => {
        const extra = c as unknown as { stop_reason?: string | number | null; token_ids?: number[] };
        const choice: GenerateChoice = {
          outputIds: extra.token_ids ?? [],
          text: finish(c.text),
          finishReason: c.finish_reason === 'length' ? 'length' : 'stop',
          stopReason: extra.stop_reason ?? null,
          seed: p.seed,
        };
        if (p.params.logprobs !== null) {
          const lp = c.logprobs;
          if (!lp?.token_logprobs) {
            throw new RemoteError(
              'REMOTE_UNSUPPORTED',
              `${model}: the server returned no logprobs for a completion`,
            );
          }
          choice.tokenLogprobs = lp.token_logprobs.map((x) => x ?? 0);
          if (p.params.logprobs > 0) {
            choice.topLogprobs = (lp.top_logprobs ?? []).map((d) => topList(d ?? {}, p.params.logprobs!));
          }
        }
        return choice;
      });
    const promptIds = res.prompt_token_ids;
    const ids = Array.isArray(promptIds?.[0]) ? (promptIds[0] as number[]) : ((promptIds as number[]) ?? []);
    return withChoices(r.inputIds ?? ids, choices);
  }

  /** Prompt log-probabilities by `echo`: per position 1.. the token's logprob and the top dict, with offsets. */
  private async echo(
    prompt: string | number[],
    model: string,
    top: number,
  ): Promise<{
    logprobs: number[];
    top: Record<string, number>[];
    tokens: string[];
    offsets: number[] | null;
    ids: number[];
  }> {
    for (;;) {
      const maxTokens = this.scoreMaxTokens === 'auto' ? 0 : this.scoreMaxTokens;
      const body: Record<string, unknown> = {
        model,
        prompt,
        echo: true,
        logprobs: Math.max(top, 1),
        max_tokens: maxTokens,
        temperature: 0,
      };
      if (this.tokenIds) body.return_tokens_as_token_ids = true;
      let res: OpenAI.Completion;
      try {
        res = await this.call('POST /v1/completions', (c) =>
          c.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming),
        );
      } catch (e) {
        if (
          e instanceof RemoteError &&
          e.status === 400 &&
          maxTokens === 0 &&
          this.scoreMaxTokens === 'auto'
        ) {
          this.scoreMaxTokens = 1; // this server wants at least one new token: ask for one and ignore it
          continue;
        }
        if (e instanceof RemoteError && e.status === 404) {
          throw new RemoteError(
            'REMOTE_UNSUPPORTED',
            `${e.endpoint}: no /v1/completions for model ${model} (a chat-only API?); scoring needs prompt ` +
              'log-probabilities (echo + logprobs on /v1/completions), as vLLM serves them',
            { status: 404, endpoint: e.endpoint, attempts: e.attempts, cause: e },
          );
        }
        throw e;
      }
      const lp = res.choices[0]?.logprobs;
      if (!lp?.token_logprobs || !lp.tokens) {
        throw new RemoteError(
          'REMOTE_UNSUPPORTED',
          `${model}: the server returned no prompt log-probabilities for echo + logprobs; scoring needs a server ` +
            'that supports them (vLLM)',
        );
      }
      const promptLen = Array.isArray(prompt)
        ? prompt.length
        : (res.usage?.prompt_tokens ?? lp.tokens.length - maxTokens);
      const tokens = lp.tokens.slice(0, promptLen);
      return {
        logprobs: lp.token_logprobs.slice(1, promptLen).map((x) => x ?? 0),
        top: (lp.top_logprobs ?? []).slice(1, promptLen).map((d) => d ?? {}),
        tokens,
        offsets: lp.text_offset ? lp.text_offset.slice(0, promptLen) : null,
        ids: tokens.every((t) => /^token_id:\d+$/.test(t)) ? tokens.map((t) => Number(t.slice(9))) : [],
      };
    }
  }

  /** The client's error as a cause fit to keep: its name and redacted message only (no request, no headers). */
  private sanitized(e: unknown): Error {
    const out = new Error(redactSecrets(e instanceof Error ? e.message : String(e), this.secrets));
    out.name = e instanceof Error ? e.name : 'Error';
    out.stack = `${out.name}: ${out.message}`;
    return out;
  }

  /**
   * One API call with the retry policy: an endpoint with the fewest requests in flight (not blocked, preferring
   * ones this call has not failed on); retryable failures try again — elsewhere at once where possible, else after
   * the back-off or the Retry-After.
   */
  private async call<T>(what: string, fn: (client: OpenAI) => Promise<T>): Promise<T> {
    const tried = new Set<Endpoint>();
    for (let attempt = 1; ; attempt++) {
      const ep = await this.acquire(tried);
      let failure: Failure;
      try {
        const result = await fn(ep.client);
        ep.served++;
        ep.failuresInRow = 0;
        return result;
      } catch (e) {
        failure = classify(e);
        // Servers echo a wrong key in their message (OpenAI does): nothing of it reaches the error.
        failure.message = redactSecrets(failure.message, this.secrets);
        const cause = this.sanitized(e);
        if (failure.kind === 'fatal') {
          throw new RemoteError('REMOTE_REJECTED', `${ep.shown}: ${what} was refused: ${failure.message}`, {
            status: failure.status,
            endpoint: ep.shown,
            attempts: attempt,
            cause,
          });
        }
        ep.failed++;
        ep.failuresInRow++;
        if (attempt > this.retries) {
          throw new RemoteError(
            'REMOTE_FAILED',
            `${ep.shown}: ${what} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}` +
              `${this.endpoints.length > 1 ? ` on ${this.endpoints.length} endpoints` : ''}; last: ${failure.message}`,
            { status: failure.status, endpoint: ep.shown, attempts: attempt, cause },
          );
        }
      } finally {
        this.release(ep);
      }
      const backoff =
        this.random() *
        Math.min(this.backoff.maxMs, this.backoff.initialMs * this.backoff.factor ** (attempt - 1));
      const after = failure.retryAfter === null ? null : Math.min(failure.retryAfter, this.maxRetryAfterMs);
      if (failure.blockEndpoint) {
        const hold =
          after ??
          this.random() *
            Math.min(
              this.backoff.maxMs,
              this.backoff.initialMs * this.backoff.factor ** (ep.failuresInRow - 1),
            );
        ep.blockedUntil = Math.max(ep.blockedUntil, performance.now() + hold);
      }
      tried.add(ep);
      // Another endpoint free now: go there at once. Else wait (acquire also waits out a blocked endpoint).
      if (!this.freeEndpoint(tried)) await this.sleep(after ?? backoff);
    }
  }

  private freeEndpoint(avoid: ReadonlySet<Endpoint>, t = performance.now()): Endpoint | null {
    let best: Endpoint | null = null;
    for (const e of this.endpoints) {
      if (avoid.has(e) || e.blockedUntil > t || e.outstanding >= this.concurrency) continue;
      if (best === null || e.outstanding < best.outstanding) best = e;
    }
    return best;
  }

  /** The endpoint with the fewest requests in flight (not blocked; untried ones first); waits while none is free. */
  private async acquire(avoid: Set<Endpoint>): Promise<Endpoint> {
    for (;;) {
      // One clock reading for the choice and the wait: an endpoint with room is blocked until `unblock`.
      const t = performance.now();
      const ep = this.freeEndpoint(avoid, t) ?? this.freeEndpoint(NONE, t);
      if (ep) {
        ep.outstanding++;
        return ep;
      }
      const unblock = Math.min(
        ...this.endpoints.filter((e) => e.outstanding < this.concurrency).map((e) => e.blockedUntil),
      );
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined;
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        this.waiters.push(wake);
        if (Number.isFinite(unblock)) {
          timer = setTimeout(
            () => {
              const i = this.waiters.indexOf(wake);
              if (i >= 0) this.waiters.splice(i, 1);
              resolve();
            },
            unblock - t + 1,
          );
        }
      });
    }
  }

  private release(ep: Endpoint): void {
    ep.outstanding--;
    this.waiters.shift()?.();
  }
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0)
    throw new InferError('INFER_BAD_PARAM', `${name} must be positive, got ${n}`);
  return n;
}

function nonNegative(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InferError('INFER_BAD_PARAM', `${name} must be a non-negative integer, got ${n}`);
  }
  return n;
}

/** The request fields of completed sampling parameters: OpenAI's always, vLLM's extras only when not default. */
export function wireParams(p: SamplingParams): Record<string, unknown> {
  const body: Record<string, unknown> = {
    max_tokens: p.max_tokens,
    temperature: p.temperature,
    top_p: p.top_p,
  };
  if (p.frequency_penalty !== 0) body.frequency_penalty = p.frequency_penalty;
  if (p.presence_penalty !== 0) body.presence_penalty = p.presence_penalty;
  if (p.stop.length > 0) body.stop = p.stop;
  if (p.top_k > 0) body.top_k = p.top_k;
  if (p.min_p !== 0) body.min_p = p.min_p;
  if (p.repetition_penalty !== 1) body.repetition_penalty = p.repetition_penalty;
  if (p.min_tokens !== 0) body.min_tokens = p.min_tokens;
  if (p.ignore_eos) body.ignore_eos = true;
  if (p.stop_token_ids.length > 0) body.stop_token_ids = p.stop_token_ids;
  return body;
}

function withChoices(inputIds: number[], choices: GenerateChoice[]): GenerateResult {
  const result: GenerateResult = { inputIds, ...choices[0] };
  if (choices.length > 1) result.choices = choices;
  return result;
}

/** A top-logprobs dict as a list, most likely first, at most n. */
function topList(d: Record<string, number>, n: number): TokenLogprob[] {
  return Object.entries(d)
    .map(([text, logprob]) => ({
      token: /^token_id:\d+$/.test(text) ? Number(text.slice(9)) : -1,
      logprob,
      text,
    }))
    .sort((a, b) => b.logprob - a.logprob)
    .slice(0, n);
}

function promptOf(text: unknown, ids: unknown, i: number, name: 'prompt' | 'text'): string | number[] {
  if ((text === undefined) === (ids === undefined)) {
    throw new RequestError(i, 'INFER_BAD_REQUEST', `give exactly one of ${name} and inputIds`);
  }
  if (text !== undefined) {
    if (typeof text !== 'string') throw new RequestError(i, 'INFER_BAD_REQUEST', `${name} must be a string`);
    if (text.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', `the ${name} is empty`);
    return text;
  }
  if (!Array.isArray(ids) || !ids.every((t) => Number.isSafeInteger(t) && t >= 0)) {
    throw new RequestError(i, 'INFER_BAD_REQUEST', 'inputIds must be a list of token ids');
  }
  if (ids.length === 0) throw new RequestError(i, 'EMPTY_PROMPT', 'inputIds is empty');
  return ids as number[];
}

/** A loglikelihood request as one prompt, and how to find its continuation in the echo. */
function pairOf(
  r: LoglikelihoodRequest,
  i: number,
): { prompt: string | number[]; contextLength: number; continuationTokens: number | null } {
  const byText = r.context !== undefined || r.continuation !== undefined;
  const byIds = r.contextIds !== undefined || r.continuationIds !== undefined;
  if (byText === byIds) {
    throw new RequestError(
      i,
      'INFER_BAD_REQUEST',
      'give context and continuation (text) or contextIds and continuationIds (token ids)',
    );
  }
  if (byIds) {
    const ctx = promptOf(undefined, r.contextIds, i, 'prompt') as number[];
    const cont = r.continuationIds;
    if (!Array.isArray(cont) || !cont.every((t) => Number.isSafeInteger(t) && t >= 0)) {
      throw new RequestError(i, 'INFER_BAD_REQUEST', 'continuationIds must be a list of token ids');
    }
    return { prompt: [...ctx, ...cont], contextLength: 0, continuationTokens: cont.length };
  }
  let context = r.context;
  let continuation = r.continuation;
  if (typeof context !== 'string' || typeof continuation !== 'string') {
    throw new RequestError(i, 'INFER_BAD_REQUEST', 'context and continuation must both be strings');
  }
  const kept = pyRstrip(context);
  if (kept.length < context.length) {
    continuation = context.slice(kept.length) + continuation;
    context = kept;
  }
  if (context.length + continuation.length === 0) {
    throw new RequestError(i, 'EMPTY_PROMPT', 'context and continuation are both empty');
  }
  return { prompt: context + continuation, contextLength: context.length, continuationTokens: null };
}
