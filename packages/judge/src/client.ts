import OpenAI, { APIError, AzureOpenAI } from 'openai';
import { type CachedCompletion, JudgeCache, type Usage } from './cache.js';
import { JudgeError } from './errors.js';
import { nodeFetch } from './fetch.js';
import { requestKey } from './hash.js';
import { type Clock, realClock, TokenBucket } from './limiter.js';
import { costOf, DEFAULT_PRICES, type Price, type PriceTable, priceFor } from './prices.js';
import { redact, safeUrl } from './redact.js';
import { backoffMs, classifyFailure, DEFAULT_RETRY, type RetryPolicy, retryAfterMs } from './retry.js';

/** One chat message of a judge request. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Where the judge runs: any OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, `polyglot infer serve`). */
export interface JudgeEndpoint {
  /**
   * Base URL of the API, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`; for Azure OpenAI
   * (with `azureApiVersion`) the resource endpoint `https://NAME.openai.azure.com`.
   */
  baseURL: string;
  /** The model name at the endpoint (Azure: the deployment name). */
  model: string;
  /**
   * API key; default `$OPENAI_API_KEY`, else a placeholder (local servers need none). Sent only in the request's
   * authorization header: never written to outputs, caches, logs or error messages.
   */
  apiKey?: string;
  /** Azure OpenAI's `api-version`: requests go to `/openai/deployments/{model}/chat/completions` with `api-key`. */
  azureApiVersion?: string;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

/** `auto`: ask for JSON mode (`response_format: json_object`) and drop it for the run if the server refuses it. */
export type JsonMode = 'auto' | 'on' | 'off';

export interface JudgeClientOptions extends JudgeEndpoint {
  /** The answer cache; default an in-memory one (nothing kept across processes). */
  cache?: JudgeCache;
  /** Mixed into every cache key, to keep answers of different endpoints that share a model name apart. */
  cacheNamespace?: string;
  /** Per-attempt timeout; default 60,000 ms. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Requests per minute (a token bucket holding one second's worth). */
  rpm?: number;
  /** Tokens per minute: each request is charged its estimated prompt tokens + max_tokens, then its real usage. */
  tpm?: number;
  /** Default `auto`. */
  jsonMode?: JsonMode;
  /** Prices (USD per 1M tokens); default {@link DEFAULT_PRICES}. */
  prices?: PriceTable;
  /**
   * Budget in USD for new requests in this client's life (cached answers are free). A request is only sent when
   * the money spent plus the worst case of every request in flight and of this one stays within it; otherwise
   * `complete` throws `JudgeError` `budget` and nothing more is spent.
   */
  maxCost?: number;
  /** Default `Math.random` (jitter). */
  random?: () => number;
  clock?: Clock;
  /**
   * The `fetch` the openai client uses; default {@link nodeFetch} (node:http with keep-alive, the built-in fetch
   * for uploads).
   */
  fetch?: typeof fetch;
  /** Retries and mode switches, for logs. Never carries the API key. */
  onEvent?: (event: JudgeEvent) => void;
}

export type JudgeEvent =
  | { type: 'retry'; attempt: number; status: number | null; delayMs: number; message: string }
  | { type: 'json-mode-off'; message: string };

/** Sampling parameters of a judge request (sent as they are; `undefined` ones are left out). */
export interface ChatParams {
  temperature?: number;
  seed?: number;
  max_tokens?: number;
  top_p?: number;
  [param: string]: unknown;
}

/** A judge answer and what it took. */
export interface Completion extends CachedCompletion {
  /** The cache key (hash of the request body). */
  key: string;
  /** Taken from the cache: no request was sent. */
  cached: boolean;
  /** Attempts made in this call (0 when cached). */
  attempts: number;
  /** Whether the request asked for JSON mode. */
  jsonMode: boolean;
  /** The answer's price in USD (at the batch rate for batch answers); null when the model has no price. */
  cost: number | null;
}

/** Running totals of a client. */
export interface ClientStats {
  /** HTTP requests sent (retries included). */
  requests: number;
  /** Answers taken from the cache. */
  cacheHits: number;
  retries: number;
  /** Answers received in this process: their tokens and cost. */
  answered: number;
  promptTokens: number;
  completionTokens: number;
  /** USD spent on new answers (priced ones). */
  spent: number;
  /** New answers whose cost is unknown (no price for the model). */
  unpriced: number;
}

/** A request that failed for good. `kind` `fatal`: no request can succeed (stop); `item`: only this one. */
export class JudgeRequestError extends JudgeError {
  constructor(
    code: string,
    message: string,
    readonly kind: 'fatal' | 'item',
    readonly status: number | null,
  ) {
    super(code, message);
    this.name = 'JudgeRequestError';
  }
}

/** A request being answered: its messages, parameters and (lazily) its bodies and keys. */
interface Prepared {
  messages: readonly ChatMessage[];
  params: ChatParams;
  get(json: boolean): { body: Record<string, unknown>; key: string };
}

/** Worst-case prompt tokens: byte-level tokenizers make at most one token per UTF-8 byte, plus a few per message. */
export function maxPromptTokens(messages: readonly ChatMessage[]): number {
  let n = 8;
  for (const m of messages) n += Buffer.byteLength(m.content, 'utf8') + Buffer.byteLength(m.role) + 8;
  return n;
}

/** A rough prompt-token estimate (4 bytes a token) for rate limiting. */
export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  let bytes = 0;
  for (const m of messages) bytes += Buffer.byteLength(m.content, 'utf8') + 16;
  return Math.ceil(bytes / 4);
}

function usageOf(u: unknown): Usage | null {
  const o = u as Record<string, unknown> | null | undefined;
  if (!o || typeof o.prompt_tokens !== 'number' || typeof o.completion_tokens !== 'number') return null;
  return {
    prompt_tokens: o.prompt_tokens,
    completion_tokens: o.completion_tokens,
    total_tokens: typeof o.total_tokens === 'number' ? o.total_tokens : o.prompt_tokens + o.completion_tokens,
  };
}

/** A chat completion response (from the API or a Batch API output line) as the cache keeps it. */
export function toCachedCompletion(resp: unknown, requestedModel: string, batch = false): CachedCompletion {
  const r = (resp ?? {}) as Record<string, unknown>;
  const choice = (Array.isArray(r.choices) ? r.choices[0] : undefined) as Record<string, unknown> | undefined;
  const message = choice?.message as Record<string, unknown> | undefined;
  const content = typeof message?.content === 'string' ? message.content : null;
  const c: CachedCompletion = {
    content,
    model: typeof r.model === 'string' && r.model !== '' ? r.model : requestedModel,
    fingerprint: typeof r.system_fingerprint === 'string' ? r.system_fingerprint : null,
    usage: usageOf(r.usage),
    finish_reason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : null,
    created_at: new Date().toISOString(),
  };
  if (batch) c.batch = true;
  return c;
}

function sleepMs(clock: Clock, ms: number): Promise<void> {
  return ms > 0 ? clock.sleep(ms) : Promise.resolve();
}

/**
 * Sends judge requests to an OpenAI-compatible endpoint through the `openai` client (its own retries off) with
 * this package's policy: answers cached by request hash (a rerun sends nothing), rate limits in requests and
 * tokens per minute, retries of transient failures with exponential back-off and jitter that honour
 * `Retry-After` (a 429 also holds back every other request until then), a timeout per attempt, costs from the
 * returned usage and a price table, and a budget that is never overrun. Concurrency is the caller's: call
 * `complete` from as many workers as wanted.
 */
export class JudgeClient {
  readonly model: string;
  readonly baseURL: string;
  readonly cache: JudgeCache;
  readonly stats: ClientStats = {
    requests: 0,
    cacheHits: 0,
    retries: 0,
    answered: 0,
    promptTokens: 0,
    completionTokens: 0,
    spent: 0,
    unpriced: 0,
  };
  private readonly api: OpenAI;
  private readonly apiKey: string;
  /** Redacted from every message: the key and the values of the extra headers (they may carry credentials). */
  private readonly secrets: string[];
  private readonly ownsCache: boolean;
  private readonly namespace: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly rpm?: TokenBucket;
  private readonly tpm?: TokenBucket;
  private readonly prices: PriceTable;
  private readonly maxCost?: number;
  private readonly random: () => number;
  private readonly clock: Clock;
  private readonly onEvent?: (e: JudgeEvent) => void;
  private json: JsonMode;
  private readonly autoJson: boolean;
  private pausedUntil = 0;
  private reserved = 0;
  private inFlight = 0;
  private settled: (() => void)[] = [];

  constructor(opts: JudgeClientOptions) {
    if (typeof opts.baseURL !== 'string' || opts.baseURL === '') {
      throw new JudgeError(
        'bad-endpoint',
        'judge endpoint: a base URL is required (e.g. http://127.0.0.1:8000/v1)',
      );
    }
    try {
      new URL(opts.baseURL);
    } catch {
      throw new JudgeError('bad-endpoint', `judge endpoint: not a URL: ${safeUrl(opts.baseURL)}`);
    }
    if (typeof opts.model !== 'string' || opts.model === '') {
      throw new JudgeError('bad-endpoint', 'judge endpoint: the model name is required');
    }
    this.model = opts.model;
    this.baseURL = opts.baseURL;
    this.apiKey = opts.apiKey || process.env.OPENAI_API_KEY || 'EMPTY';
    this.secrets = [this.apiKey, ...Object.values(opts.headers ?? {})].filter((v) => v !== 'EMPTY');
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    const common = {
      apiKey: this.apiKey,
      timeout: this.timeoutMs,
      maxRetries: 0,
      defaultHeaders: opts.headers,
      logLevel: 'off' as const,
      fetch: opts.fetch ?? nodeFetch,
    };
    this.api = opts.azureApiVersion
      ? new AzureOpenAI({
          ...common,
          endpoint: opts.baseURL,
          apiVersion: opts.azureApiVersion,
          deployment: opts.model,
        })
      : new OpenAI({ ...common, baseURL: opts.baseURL });
    this.ownsCache = opts.cache === undefined;
    this.cache = opts.cache ?? JudgeCache.open(':memory:');
    this.namespace = opts.cacheNamespace ?? '';
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    if (opts.rpm !== undefined) this.rpm = new TokenBucket(opts.rpm, { clock: opts.clock });
    if (opts.tpm !== undefined) this.tpm = new TokenBucket(opts.tpm, { clock: opts.clock });
    this.json = opts.jsonMode ?? 'auto';
    this.autoJson = this.json === 'auto';
    this.prices = opts.prices ?? DEFAULT_PRICES;
    this.random = opts.random ?? Math.random;
    this.clock = opts.clock ?? realClock;
    this.onEvent = opts.onEvent;
    if (opts.maxCost !== undefined) {
      if (!(opts.maxCost >= 0))
        throw new JudgeError('bad-budget', `the budget must be ≥ 0 USD, got ${opts.maxCost}`);
      if (!priceFor(this.prices, this.model)) {
        throw new JudgeError(
          'no-price',
          `a budget (--max-cost) needs the price of the judge model ${JSON.stringify(this.model)}, which the price ` +
            'table lacks: pass a price table (--prices FILE, {"<model>": {"input": USD/1M, "output": USD/1M}})',
        );
      }
      this.maxCost = opts.maxCost;
    }
  }

  /** Whether requests currently ask for JSON mode. */
  get jsonMode(): JsonMode {
    return this.json;
  }

  /** The price used for answers of `model` (the answering model's name first, then the one asked for). */
  price(model?: string | null): Price | undefined {
    return priceFor(this.prices, model) ?? priceFor(this.prices, this.model);
  }

  /** The request body `complete` sends for these messages and parameters. */
  body(messages: readonly ChatMessage[], params: ChatParams, json: boolean): Record<string, unknown> {
    const body: Record<string, unknown> = { model: this.model, messages };
    for (const [k, v] of Object.entries(params)) if (v !== undefined) body[k] = v;
    if (json) body.response_format = { type: 'json_object' };
    return body;
  }

  /** The cache key of a request body. */
  key(body: Record<string, unknown>): string {
    return requestKey(body, this.namespace);
  }

  /** The cached answer to these messages, if any (in `auto` mode with or without JSON mode). */
  lookup(messages: readonly ChatMessage[], params: ChatParams): Completion | undefined {
    return this.find(this.prepare(messages, params));
  }

  /** The request bodies and keys with and without JSON mode, each built once when first needed. */
  private prepare(messages: readonly ChatMessage[], params: ChatParams): Prepared {
    const memo: Partial<Record<'json' | 'plain', { body: Record<string, unknown>; key: string }>> = {};
    return {
      messages,
      params,
      get: (json: boolean) => {
        const m = json ? 'json' : 'plain';
        if (!memo[m]) {
          const body = this.body(messages, params, json);
          memo[m] = { body, key: this.key(body) };
        }
        return memo[m]!;
      },
    };
  }

  private find(req: Prepared): Completion | undefined {
    const modes = this.json === 'off' ? [false] : this.json === 'on' ? [true] : [true, false];
    for (const json of modes) {
      const { key } = req.get(json);
      const hit = this.cache.get(key);
      if (hit) return { ...hit, key, cached: true, attempts: 0, jsonMode: json, cost: this.costOf(hit) };
    }
    return undefined;
  }

  private costOf(c: CachedCompletion): number | null {
    return costOf(c.usage, this.price(c.model), c.batch === true);
  }

  /** Worst-case cost of a request (every byte a token, every allowed output token used). */
  private worstCost(messages: readonly ChatMessage[], params: ChatParams, batch = false): number {
    const p = this.price(this.model)!;
    const out = typeof params.max_tokens === 'number' ? params.max_tokens : 4096;
    const c = (maxPromptTokens(messages) * p.input + out * p.output) / 1e6;
    return batch ? c * (p.batch ?? 0.5) : c;
  }

  /** How many of these request bodies, taken in order, fit in what is left of the budget (all without one). */
  affordable(bodies: readonly Record<string, unknown>[], rate: 'online' | 'batch' = 'online'): number {
    if (this.maxCost === undefined) return bodies.length;
    let left = this.maxCost - this.stats.spent - this.reserved;
    for (let i = 0; i < bodies.length; i++) {
      const b = bodies[i];
      left -= this.worstCost(b.messages as ChatMessage[], b as ChatParams, rate === 'batch');
      if (left < 0) return i;
    }
    return bodies.length;
  }

  /**
   * Stores answers obtained elsewhere (the Batch API) in the cache and counts them as answered here (tokens,
   * cost). Returns how many were new.
   */
  ingest(rows: { key: string; body: Record<string, unknown>; completion: CachedCompletion }[]): number {
    const added = this.cache.putMany(
      rows.map((r) => ({ key: r.key, request: r.body, completion: r.completion })),
    );
    for (const r of rows) {
      const c = r.completion;
      const cost = this.costOf(c);
      this.stats.answered++;
      this.stats.promptTokens += c.usage?.prompt_tokens ?? 0;
      this.stats.completionTokens += c.usage?.completion_tokens ?? 0;
      if (cost === null) this.stats.unpriced++;
      else this.stats.spent += cost;
    }
    return added;
  }

  /**
   * Runs another API call (Batch API files and jobs) under the same retry policy as chat requests; `what` names
   * it in the error. Failures are `JudgeRequestError`s with the key redacted.
   */
  async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.stats.requests++;
        return await fn();
      } catch (e) {
        const status = e instanceof APIError && typeof e.status === 'number' ? e.status : null;
        const message = this.describe(e);
        const kind = classifyFailure(status ?? undefined, e instanceof APIError ? e.code : null);
        if (kind === 'retry' && attempt <= this.retry.maxRetries) {
          const asked = e instanceof APIError ? retryAfterMs(e.headers) : undefined;
          const delayMs =
            asked !== undefined
              ? Math.min(asked, this.retry.maxRetryAfterMs)
              : backoffMs(attempt - 1, this.retry, this.random);
          this.stats.retries++;
          this.onEvent?.({ type: 'retry', attempt, status, delayMs: Math.round(delayMs), message });
          await sleepMs(this.clock, delayMs);
          continue;
        }
        const f = this.failure('fatal', status, message, attempt);
        throw new JudgeRequestError(f.code, `${what}: ${f.message}`, 'fatal', status);
      }
    }
  }

  private async reserve(messages: readonly ChatMessage[], params: ChatParams): Promise<number> {
    if (this.maxCost === undefined) return 0;
    const need = this.worstCost(messages, params);
    while (this.stats.spent + this.reserved + need > this.maxCost) {
      if (this.inFlight === 0) {
        throw new JudgeError(
          'budget',
          `budget reached: $${this.stats.spent.toFixed(4)} spent of --max-cost $${this.maxCost}, and the next ` +
            `request may cost up to $${need.toFixed(4)}`,
        );
      }
      await new Promise<void>((resolve) => this.settled.push(resolve));
    }
    this.reserved += need;
    return need;
  }

  private release(reserved: number): void {
    this.reserved -= reserved;
    const waiters = this.settled;
    this.settled = [];
    for (const w of waiters) w();
  }

  /**
   * The judge's answer to `messages`: from the cache, else from the endpoint (then cached). Throws
   * `JudgeRequestError` (`fatal`: stop everything; `item`: this request is refused) or `JudgeError` `budget`.
   */
  async complete(messages: readonly ChatMessage[], params: ChatParams = {}): Promise<Completion> {
    const req = this.prepare(messages, params);
    const hit = this.find(req);
    if (hit) {
      this.stats.cacheHits++;
      return hit;
    }
    const reserved = await this.reserve(messages, params);
    this.inFlight++;
    try {
      return await this.send(req);
    } finally {
      this.inFlight--;
      this.release(reserved);
    }
  }

  private async send(req: Prepared): Promise<Completion> {
    const { messages, params } = req;
    let attempt = 0;
    for (;;) {
      const json = this.json !== 'off';
      const { body, key } = req.get(json);
      const estimate =
        estimatePromptTokens(messages) + (typeof params.max_tokens === 'number' ? params.max_tokens : 0);
      await this.rpm?.take(1);
      await this.tpm?.take(estimate);
      const pause = this.pausedUntil - this.clock.now();
      if (pause > 0) await sleepMs(this.clock, pause);
      attempt++;
      this.stats.requests++;
      try {
        const resp = await this.api.chat.completions.create(
          body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming,
          { timeout: this.timeoutMs, maxRetries: 0 },
        );
        const c = toCachedCompletion(resp, this.model);
        if (c.usage) this.tpm?.adjust(c.usage.total_tokens - estimate);
        this.cache.putSoon(key, body, c);
        const cost = this.costOf(c);
        this.stats.answered++;
        this.stats.promptTokens += c.usage?.prompt_tokens ?? 0;
        this.stats.completionTokens += c.usage?.completion_tokens ?? 0;
        if (cost === null) this.stats.unpriced++;
        else this.stats.spent += cost;
        return { ...c, key, cached: false, attempts: attempt, jsonMode: json, cost };
      } catch (e) {
        const status = e instanceof APIError && typeof e.status === 'number' ? e.status : null;
        const message = this.describe(e);
        if (
          this.autoJson &&
          json &&
          (status === 400 || status === 422) &&
          (/response_format|json/i.test(message) || (e as APIError).param === 'response_format')
        ) {
          // the requests in flight at the switch fail the same way: only the first one reports it
          if (this.json !== 'off') {
            this.json = 'off';
            this.onEvent?.({
              type: 'json-mode-off',
              message: `the endpoint refused JSON mode (${status} ${message}); going on without it`,
            });
          }
          attempt--;
          const hit = this.find(req);
          if (hit) {
            this.stats.cacheHits++;
            return hit;
          }
          continue;
        }
        const code = e instanceof APIError ? (e.code ?? null) : null;
        const kind = classifyFailure(status ?? undefined, code);
        if (kind === 'retry' && attempt <= this.retry.maxRetries) {
          const asked = e instanceof APIError ? retryAfterMs(e.headers) : undefined;
          const delayMs =
            asked !== undefined
              ? Math.min(asked, this.retry.maxRetryAfterMs) * (1 + 0.1 * this.random())
              : backoffMs(attempt - 1, this.retry, this.random);
          if (status === 429) this.pausedUntil = Math.max(this.pausedUntil, this.clock.now() + delayMs);
          this.stats.retries++;
          this.onEvent?.({ type: 'retry', attempt, status, delayMs: Math.round(delayMs), message });
          await sleepMs(this.clock, delayMs);
          continue;
        }
        throw this.failure(kind === 'retry' ? 'fatal' : kind, status, message, attempt);
      }
    }
  }

  /** The error's message, with the API key and anything key-like removed. */
  private describe(e: unknown): string {
    let m = e instanceof Error ? e.message : String(e);
    // the openai client starts its messages with the status, which is printed separately
    if (e instanceof APIError && typeof e.status === 'number' && m.startsWith(`${e.status} `)) {
      m = m.slice(String(e.status).length + 1);
    }
    return redact(m, this.secrets).replace(/\s+/g, ' ').trim().slice(0, 500);
  }

  private failure(
    kind: 'fatal' | 'item',
    status: number | null,
    message: string,
    attempts: number,
  ): JudgeRequestError {
    const where = `judge endpoint ${safeUrl(this.baseURL)} (model ${this.model})`;
    if (status === 401 || status === 403) {
      return new JudgeRequestError(
        'auth',
        `${where}: ${status} ${message} — check the API key (OPENAI_API_KEY, --api-key-env NAME or --api-key-file FILE)`,
        'fatal',
        status,
      );
    }
    if (status === 404) {
      return new JudgeRequestError(
        'not-found',
        `${where}: 404 ${message} — check the base URL (it usually ends in /v1) and the model name`,
        'fatal',
        status,
      );
    }
    if (kind === 'item') {
      return new JudgeRequestError('request-refused', `${where}: ${status} ${message}`, 'item', status);
    }
    return new JudgeRequestError(
      status === 429 ? 'rate-limited' : 'request-failed',
      `${where}: gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${status ?? 'no response'} ${message}; ` +
        'rerun to resume (answers so far are kept)',
      'fatal',
      status,
    );
  }

  /** Direct access for the Batch API (files, batches); same key and endpoint. */
  get openai(): OpenAI {
    return this.api;
  }

  /** Closes the cache if this client opened it. */
  close(): void {
    if (this.ownsCache) this.cache.close();
  }
}
