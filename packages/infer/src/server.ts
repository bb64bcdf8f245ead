import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { type ChatMessage, isPolyglotError } from '@polyglot/model';
import { RequestAbortedError } from './batcher.js';
import type { GenerateChoice, GenerateParams, GenerateResult, ScoreResult } from './engine.js';
import { SamplingParamError } from './errors.js';
import { type LocalEngine, RequestError } from './local-engine.js';
import type { TokenLogprob } from './logprobs.js';
import { samplingParams } from './params.js';
import type { TokenEvent } from './row.js';
import { ApiKeyCheck, refuseOnSocket, resolveLimits, type ServerLimits } from './server-security.js';

export type { ServerLimits } from './server-security.js';

export interface ServerOptions {
  /** The engine served (its continuous batch serves all requests). */
  engine: LocalEngine;
  /** The base model's name in the API (`model` field, `/v1/models`); default the model directory's basename. */
  servedModelName?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000; 0 picks a free port (see {@link OpenAIServer.port}). */
  port?: number;
  /** Limits of requests and connections; the defaults are those of {@link defaultLimits} (see SECURITY.md). */
  limits?: Partial<ServerLimits>;
  /**
   * When set, every request but `GET /health` must carry `Authorization: Bearer <apiKey>` (checked in constant time; 401
   * otherwise); `/health` stays open. The key is kept only as its SHA-256 digest and never logged.
   */
  apiKey?: string;
  /**
   * Accept a `chat_template` (Jinja source) in chat requests (vLLM's --trust-request-chat-template). Default false:
   * a template runs arbitrary loops in the server's only thread, so only trusted clients may send one.
   */
  trustRequestChatTemplate?: boolean;
  /** Called with one record per request answered (method, path, status, ms) and on start/stop. */
  log?: (record: Record<string, unknown>) => void;
}

/** An error answered as OpenAI's error JSON: `{ error: { message, type, param, code } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const bad = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', code, param);

type Json = Record<string, unknown>;

/** The sampling fields of the OpenAI and vLLM APIs that map one to one onto {@link GenerateParams}. */
const SAMPLING_FIELDS = [
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'frequency_penalty',
  'presence_penalty',
  'repetition_penalty',
  'min_tokens',
  'stop',
  'stop_token_ids',
  'ignore_eos',
  'seed',
] as const;

const now = () => Math.floor(Date.now() / 1000);

function optInt(body: Json, name: string, min: number, max: number): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(`${name} must be an integer`, name);
  if (v < min || v > max) throw bad(`${name} must be between ${min} and ${max}, got ${v}`, name);
  return v;
}

function optBool(body: Json, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${name} must be true or false`, name);
  return v;
}

/** UTF-8 bytes of a token's text (the chat API's `bytes`). */
const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];

/**
 * An OpenAI-compatible HTTP server over a {@link LocalEngine} (node:http, no framework), as vLLM serves one:
 * `GET /v1/models`, `POST /v1/completions` (text or token-id prompts, several at once, `echo`, `logprobs`),
 * `POST /v1/chat/completions` (the engine's chat template), server-sent-event streaming, LoRA adapters selected by
 * `model` name, `GET /health`. Every request joins the engine's continuous batch ({@link LocalEngine.submit}), so
 * concurrent requests decode together. Errors are OpenAI's error JSON: 400 for a bad request, 404 for an unknown
 * model or path, 413 for a body over the limit, 503 while shutting down or when the queue is full.
 */
export class OpenAIServer {
  readonly engine: LocalEngine;
  readonly servedModelName: string;
  readonly limits: ServerLimits;
  private readonly server: http.Server;
  private readonly log: (record: Json) => void;
  private readonly auth: ApiKeyCheck | null;
  private readonly trustTemplates: boolean;
  /** Open connections; those past `maxConnections` when they opened are in `over`. */
  private readonly sockets = new Set<Socket>();
  private readonly over = new WeakSet<Socket>();
  private inflight = 0;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  private constructor(opts: ServerOptions) {
    this.engine = opts.engine;
    this.servedModelName = opts.servedModelName ?? path.basename(path.resolve(opts.engine.info.model));
    const limits = resolveLimits(opts.limits, opts.engine.model.config.maxPositionEmbeddings);
    this.limits = limits;
    this.auth = opts.apiKey === undefined ? null : new ApiKeyCheck(opts.apiKey);
    this.trustTemplates = opts.trustRequestChatTemplate ?? false;
    this.log = opts.log ?? (() => {});
    this.server = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // How often Node looks for requests past their timeouts.
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
      },
      (req, res) => {
        this.handle(req, res).catch((e) => {
          this.log({ event: 'error', error: String(e) });
          res.destroy();
        });
      },
    );
    // Beyond twice the limit, connections are closed at once (a flood must not exhaust file descriptors).
    this.server.maxConnections = 2 * limits.maxConnections;
    this.server.on('connection', (socket: Socket) => {
      if (this.sockets.size >= limits.maxConnections) this.over.add(socket);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // Malformed requests and slow clients: OpenAI's error JSON with 400/408/413/431, then the connection is closed.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        socket.destroy();
        return;
      }
      const [status, reason, message, code] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'the request was not received in time', 'request_timeout']
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? [
                431,
                'Request Header Fields Too Large',
                'the request headers are too large',
                'headers_too_large',
              ]
            : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' || err.code === 'HPE_BODY_TOO_LARGE'
              ? [413, 'Payload Too Large', 'the request is too large', 'body_too_large']
              : [400, 'Bad Request', `malformed HTTP request (${err.code ?? 'parse error'})`, 'bad_http'];
      this.log({ event: 'client_error', status, code: err.code ?? null });
      refuseOnSocket(socket, status, reason, {
        error: { message, type: 'invalid_request_error', param: null, code },
      });
    });
  }

  /** Starts a server and resolves once it listens. */
  static async start(opts: ServerOptions): Promise<OpenAIServer> {
    const s = new OpenAIServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    s.log({ event: 'listening', url: s.url, model: s.servedModelName, adapters: s.engine.adapterNames });
    return s;
  }

  /** The port listened on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Open TCP connections now (those over `maxConnections` included, until they are closed). */
  get connections(): number {
    return this.sockets.size;
  }

  /** `http://host:port`, the base URL (the OpenAI client's `baseURL` is this plus `/v1`). */
  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  /**
   * Graceful shutdown: stops accepting connections, answers requests arriving on open connections with 503, lets
   * the requests in flight finish (streams included), then closes every connection. After `timeoutMs` (default
   * 60 s) connections still open are cut. The engine is left open (the caller closes it).
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      if (this.inflight > 0) {
        const drained = new Promise<void>((resolve) => {
          this.drained = resolve;
        });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, opts.timeoutMs ?? 60_000);
        });
        await Promise.race([drained, timeout]);
        clearTimeout(timer);
      }
      this.server.closeAllConnections();
      await closed;
      this.log({ event: 'closed' });
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    this.inflight++;
    let pathname = '?';
    try {
      if (this.closing) {
        throw new ApiError(503, 'the server is shutting down', 'server_error', 'shutting_down');
      }
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://localhost');
      } catch {
        throw new ApiError(400, 'the request target is not a valid URL path', 'invalid_request_error');
      }
      pathname = url.pathname;
      if (this.over.has(req.socket)) {
        throw new ApiError(
          503,
          `too many connections (more than ${this.limits.maxConnections}); retry later`,
          'server_error',
          'too_many_connections',
          null,
          { 'Retry-After': '1', Connection: 'close' },
        );
      }
      if (this.auth && url.pathname !== '/health' && !this.auth.matches(req.headers.authorization)) {
        // The connection is closed: a body that was never read must not be taken for the next request.
        throw new ApiError(
          401,
          'Incorrect or missing API key: send it as the header "Authorization: Bearer <key>".',
          'invalid_request_error',
          'invalid_api_key',
          null,
          { Connection: 'close' },
        );
      }
      const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
      switch (route) {
        case 'GET /health':
          this.send(res, 200, {});
          break;
        case 'GET /v1/models':
          this.send(res, 200, this.models());
          break;
        case 'POST /v1/completions':
          await this.completions(await this.body(req), res);
          break;
        case 'POST /v1/chat/completions':
          await this.chat(await this.body(req), res);
          break;
        default:
          if (['/health', '/v1/models', '/v1/completions', '/v1/chat/completions'].includes(url.pathname)) {
            throw new ApiError(
              405,
              `method ${req.method} is not allowed on ${url.pathname}`,
              'invalid_request_error',
            );
          }
          throw new ApiError(404, `no route ${req.method} ${url.pathname}`, 'not_found_error', 'not_found');
      }
    } catch (e) {
      this.fail(res, e);
    } finally {
      this.log({
        method: req.method,
        path: pathname,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      });
      if (--this.inflight === 0) this.drained?.();
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.closing ? { ...extra, Connection: 'close' } : extra;
  }

  private send(
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(
      status,
      this.headers({
        'Content-Type': 'application/json',
        'Content-Length': String(Buffer.byteLength(text)),
        ...headers,
      }),
    );
    res.end(text);
  }

  private fail(res: http.ServerResponse, e: unknown): void {
    const err = toApiError(e);
    if (err.status >= 500 && !(e instanceof ApiError)) this.log({ event: 'error', error: String(e) });
    if (res.headersSent) {
      // Mid-stream: one error event, then the end of the stream.
      if (!res.writableEnded) {
        res.write(`data: ${JSON.stringify(err.body)}\n\ndata: [DONE]\n\n`);
        res.end();
      }
      return;
    }
    this.send(res, err.status, err.body, err.headers);
  }

  private body(req: http.IncomingMessage): Promise<Json> {
    const limit = this.limits.maxBodyBytes;
    const tooLarge = (message: string) =>
      new ApiError(413, message, 'invalid_request_error', 'body_too_large', null, { Connection: 'close' });
    return new Promise<Json>((resolve, reject) => {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > limit) {
        // Answered at once; the rest is read and dropped (bounded by requestTimeoutMs), then the connection closes.
        req.resume();
        reject(tooLarge(`the request body is ${declared} bytes, more than the limit of ${limit}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (fn: () => void) => {
        if (!settled) {
          settled = true;
          fn();
        }
      };
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) chunks.push(chunk);
        else if (!settled) {
          chunks.length = 0;
          req.resume();
          settle(() => reject(tooLarge(`the request body is more than the limit of ${limit} bytes`)));
        }
      });
      req.on('error', (e) => settle(() => reject(e)));
      req.on('close', () =>
        settle(() =>
          reject(new ApiError(499, 'the client closed the connection before sending the whole request')),
        ),
      );
      req.on('end', () =>
        settle(() => {
          let value: unknown;
          try {
            value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch (e) {
            reject(bad(`the request body is not valid JSON: ${(e as Error).message}`));
            return;
          }
          if (typeof value !== 'object' || value === null || Array.isArray(value)) {
            reject(bad('the request body must be a JSON object'));
            return;
          }
          resolve(value as Json);
        }),
      );
    });
  }

  private models(): Json {
    const created = now();
    const maxModelLen = this.engine.model.config.maxPositionEmbeddings;
    const card = (id: string, parent: string | null) => ({
      id,
      object: 'model',
      created,
      owned_by: 'polyglot',
      root: parent === null ? this.engine.info.model : id,
      parent,
      max_model_len: maxModelLen,
    });
    return {
      object: 'list',
      data: [
        card(this.servedModelName, null),
        ...this.engine.adapterNames.map((a) => card(a, this.servedModelName)),
      ],
    };
  }

  /** The adapter a request's `model` names: null for the base model. */
  private adapterFor(body: Json): string | null {
    const model = body.model;
    if (typeof model !== 'string' || model === '') throw bad('model is required (a string)', 'model');
    if (model === this.servedModelName) return null;
    if (this.engine.adapterNames.includes(model)) return model;
    const known = [this.servedModelName, ...this.engine.adapterNames].join(', ');
    throw new ApiError(
      404,
      `The model \`${model}\` does not exist (served: ${known}).`,
      'not_found_error',
      'model_not_found',
      'model',
    );
  }

  /** The sampling parameters of a request, validated (a bad one is a 400 naming it). */
  private params(body: Json, maxTokens: number, logprobs: number | null): GenerateParams {
    const p: Record<string, unknown> = { max_tokens: maxTokens, logprobs };
    for (const k of SAMPLING_FIELDS) if (body[k] !== undefined && body[k] !== null) p[k] = body[k];
    for (const k of ['stop', 'stop_token_ids']) {
      const v = p[k];
      if (Array.isArray(v) && v.length > this.limits.maxStop) {
        throw bad(`at most ${this.limits.maxStop} ${k} per request, got ${v.length}`, k);
      }
    }
    try {
      samplingParams(p);
    } catch (e) {
      if (e instanceof SamplingParamError) throw bad(e.message, e.param);
      throw e;
    }
    return p as GenerateParams;
  }

  /** Prompt text beyond `maxPromptChars` is refused before it is tokenized (tokenizing blocks the thread). */
  private checkPromptChars(chars: number, param = 'prompt'): void {
    if (chars > this.limits.maxPromptChars) {
      throw bad(
        `the prompt text is ${chars} characters, more than the limit of ${this.limits.maxPromptChars}`,
        param,
        'prompt_too_long',
      );
    }
  }

  private checkQueue(): void {
    if (this.engine.load.waiting >= this.limits.maxWaiting) {
      throw new ApiError(
        503,
        'too many requests are waiting; retry later',
        'server_error',
        'overloaded',
        null,
        {
          'Retry-After': '1',
        },
      );
    }
  }

  private maxTokens(body: Json, names: string[], fallback: number, min: number): number {
    for (const name of names) {
      const v = optInt(body, name, min, this.limits.maxTokens);
      if (v !== undefined) return v;
    }
    return fallback;
  }

  private common(body: Json): { n: number; stream: boolean; includeUsage: boolean } {
    const n = optInt(body, 'n', 1, this.limits.maxN) ?? 1;
    const stream = optBool(body, 'stream') ?? false;
    const so = body.stream_options;
    if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) {
      throw bad('stream_options must be an object', 'stream_options');
    }
    const includeUsage = (so as Json | null | undefined)?.include_usage === true;
    if (
      body.logit_bias !== undefined &&
      body.logit_bias !== null &&
      Object.keys(body.logit_bias as Json).length > 0
    ) {
      throw bad('logit_bias is not supported by this server', 'logit_bias');
    }
    const bestOf = body.best_of;
    if (bestOf !== undefined && bestOf !== null && bestOf !== n) {
      throw bad('best_of is not supported (only best_of = n)', 'best_of');
    }
    return { n, stream, includeUsage };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // /v1/completions

  private async completions(body: Json, res: http.ServerResponse): Promise<void> {
    const adapter = this.adapterFor(body);
    const { n, stream, includeUsage } = this.common(body);
    const echo = optBool(body, 'echo') ?? false;
    const logprobs = optInt(body, 'logprobs', 0, this.limits.maxLogprobs) ?? null;
    if (body.suffix !== undefined && body.suffix !== null) throw bad('suffix is not supported', 'suffix');
    const maxTokens = this.maxTokens(body, ['max_tokens'], 16, echo ? 0 : 1);
    const params = this.params(body, maxTokens, logprobs);
    const idsAsText = optBool(body, 'return_tokens_as_token_ids') ?? false;
    const prompts = this.prompts(body.prompt);
    this.checkQueue();

    const tok = this.engine.tokenizer;
    const id = `cmpl-${randomUUID().replace(/-/g, '')}`;
    const created = now();
    const model = body.model as string;
    const controller = abortOnClose(res);
    const prompted = prompts.map((p) => ({
      ids: p.ids ?? tok.encode(p.text!),
      text: p.text ?? tok.decode(p.ids!, { skipSpecialTokens: true }),
    }));
    const sse = stream ? new EventStream(res, this.headers()) : null;
    const chunk = (choices: Json[], usage?: Json) =>
      sse?.send({ id, object: 'text_completion', created, model, choices, ...(usage ? { usage } : {}) });

    // Each prompt's samples run as one request of the continuous batch; choices are numbered prompt by prompt.
    const tokens: TokenEvent[][][] = prompted.map(() => Array.from({ length: n }, () => []));
    const streamed: string[][] = prompted.map(() => new Array<string>(n).fill(''));
    const offsets: number[][] = prompted.map(() => new Array<number>(n).fill(0));
    const results = await Promise.all(
      prompted.map(async (p, i) => {
        let echoed: ScoreResult | null = null;
        if (echo && logprobs !== null) {
          echoed = (await this.engine.score([{ inputIds: p.ids }], { adapter, topLogprobs: logprobs }))[0];
        }
        if (sse && echo) {
          for (let k = 0; k < n; k++) {
            const lp = echoed ? this.promptLogprobs(p.ids, echoed, idsAsText) : null;
            chunk([{ index: i * n + k, text: p.text, logprobs: lp, finish_reason: null }]);
            offsets[i][k] = p.text.length;
          }
        }
        let result: GenerateResult;
        try {
          result = await this.engine.submit(
            { inputIds: p.ids, params, n, trim: false },
            {
              adapter,
              signal: controller.signal,
              onToken: (k, e) => {
                tokens[i][k].push(e);
                if (!sse || (e.text === '' && logprobs === null)) return;
                streamed[i][k] += e.text;
                const lp =
                  logprobs === null
                    ? null
                    : this.completionLogprobs(p.ids, [e], offsets[i][k], idsAsText, tokens[i][k]);
                offsets[i][k] += e.text.length;
                chunk([{ index: i * n + k, text: e.text, logprobs: lp, finish_reason: null }]);
              },
            },
          );
        } catch (e) {
          throw this.atPrompt(e, i, prompts.length);
        }
        const choices = result.choices ?? [result];
        if (sse) {
          choices.forEach((c, k) => {
            chunk([
              {
                index: i * n + k,
                text: c.text.slice(streamed[i][k].length),
                logprobs: null,
                finish_reason: c.finishReason,
                stop_reason: c.stopReason,
              },
            ]);
          });
        }
        return { result, echoed };
      }),
    ).catch((e) => {
      controller.abort();
      throw e;
    });

    const usage = this.usage(
      results.map((r) => r.result),
      prompted.map((p) => p.ids.length),
    );
    if (sse) {
      if (includeUsage) chunk([], usage);
      sse.end();
      return;
    }
    const choices: Json[] = [];
    results.forEach(({ result, echoed }, i) => {
      const p = prompted[i];
      (result.choices ?? [result]).forEach((c, k) => {
        let lp: Json | null = null;
        if (logprobs !== null) {
          const head = echoed ? this.promptLogprobs(p.ids, echoed, idsAsText) : null;
          const start = echo ? p.text.length : 0;
          const tail = this.completionLogprobs(p.ids, tokens[i][k], start, idsAsText, tokens[i][k]);
          lp = head ? concatLogprobs(head, tail) : tail;
        }
        choices.push({
          index: i * n + k,
          text: (echo ? p.text : '') + c.text,
          logprobs: lp,
          finish_reason: c.finishReason,
          stop_reason: c.stopReason,
          ...(optBool(body, 'return_token_ids') ? { token_ids: c.outputIds } : {}),
        });
      });
    });
    this.send(res, 200, {
      id,
      object: 'text_completion',
      created,
      model,
      choices,
      usage,
      ...(optBool(body, 'return_token_ids') ? { prompt_token_ids: prompted.map((p) => p.ids) } : {}),
    });
  }

  /** The prompts of a completions request: a string, a list of strings, token ids, or a list of token-id lists. */
  private prompts(prompt: unknown): { text?: string; ids?: number[] }[] {
    const V = this.engine.model.config.vocabSize;
    const isIds = (v: unknown): v is number[] =>
      Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'number');
    const checkIds = (ids: number[], where: string) => {
      const badAt = ids.findIndex((t) => !Number.isSafeInteger(t) || t < 0 || t >= V);
      if (badAt >= 0) {
        throw bad(
          `${where}[${badAt}] = ${ids[badAt]} is not a token id of the model (vocabulary [0, ${V}))`,
          'prompt',
        );
      }
    };
    let list: { text?: string; ids?: number[] }[];
    if (typeof prompt === 'string') list = [{ text: prompt }];
    else if (isIds(prompt)) list = [{ ids: prompt }];
    else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((p) => typeof p === 'string')) {
      list = prompt.map((text: string) => ({ text }));
    } else if (Array.isArray(prompt) && prompt.length > 0 && prompt.every(isIds)) {
      list = prompt.map((ids: number[]) => ({ ids }));
    } else {
      throw bad(
        'prompt must be a string, a list of strings, a list of token ids or a list of such lists',
        'prompt',
      );
    }
    if (list.length > this.limits.maxPrompts) {
      throw bad(`at most ${this.limits.maxPrompts} prompts per request, got ${list.length}`, 'prompt');
    }
    this.checkPromptChars(list.reduce((a, p) => a + (p.text?.length ?? 0), 0));
    list.forEach((p, i) => {
      if (p.text === '') throw bad(`prompt ${i} is empty`, 'prompt');
      if (p.ids) checkIds(p.ids, list.length > 1 ? `prompt[${i}]` : 'prompt');
    });
    return list;
  }

  /** The text of token `id` following token `prev` (the context gives SentencePiece's leading space). */
  private tokenText(prev: number | null, id: number, idsAsText: boolean): string {
    if (idsAsText) return `token_id:${id}`;
    const tok = this.engine.tokenizer;
    if (tok.specialIds.has(id)) return tok.idToToken(id);
    const skip = { skipSpecialTokens: true };
    if (prev === null) return tok.decode([id], skip);
    return tok.decode([prev, id], skip).slice(tok.decode([prev], skip).length);
  }

  /** A top-logprobs dict (vLLM: the chosen token always among them). */
  private topDict(
    prev: number | null,
    chosen: number,
    lp: number,
    top: TokenLogprob[],
    idsAsText: boolean,
  ): Json {
    const d: Json = {};
    for (const t of top) d[this.tokenText(prev, t.token, idsAsText)] ??= t.logprob;
    d[this.tokenText(prev, chosen, idsAsText)] ??= lp;
    return d;
  }

  /** Completions logprobs of the prompt (echo): the first token has none. */
  private promptLogprobs(ids: number[], s: ScoreResult, idsAsText: boolean): Json {
    const stream = this.engine.tokenizer.decodeStream();
    const pieces = ids.map((t) => stream.step(t));
    const offsets: number[] = [];
    let at = 0;
    for (const t of pieces) {
      offsets.push(at);
      at += t.length;
    }
    return {
      tokens: idsAsText ? ids.map((t) => `token_id:${t}`) : pieces,
      token_logprobs: [null, ...s.tokenLogprobs],
      top_logprobs: [
        null,
        ...s.tokenLogprobs.map((lp, t) =>
          this.topDict(ids[t], ids[t + 1], lp, s.topLogprobs?.[t] ?? [], idsAsText),
        ),
      ],
      text_offset: offsets,
    };
  }

  /** Completions logprobs of generated tokens `events` (the last ones of `all`), text offsets from `start`. */
  private completionLogprobs(
    promptIds: number[],
    events: TokenEvent[],
    start: number,
    idsAsText: boolean,
    all: TokenEvent[],
  ): Json {
    const first = all.length - events.length;
    const prevOf = (j: number) => (first + j > 0 ? all[first + j - 1].token : (promptIds.at(-1) ?? null));
    const offsets: number[] = [];
    let at = start;
    for (const e of events) {
      offsets.push(at);
      at += e.piece.length;
    }
    return {
      tokens: events.map((e) => (idsAsText ? `token_id:${e.token}` : e.piece)),
      token_logprobs: events.map((e) => e.logprob ?? null),
      top_logprobs: events.map((e, j) =>
        this.topDict(prevOf(j), e.token, e.logprob ?? 0, e.top ?? [], idsAsText),
      ),
      text_offset: offsets,
    };
  }

  private usage(results: GenerateResult[], promptLengths: number[]): Json {
    const prompt = promptLengths.reduce((a, b) => a + b, 0);
    const completion = results.reduce(
      (a, r) => a + (r.choices ?? [r]).reduce((b, c: GenerateChoice) => b + c.outputIds.length, 0),
      0,
    );
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  private atPrompt(e: unknown, i: number, count: number): unknown {
    if (e instanceof RequestError && count > 1) {
      return new ApiError(400, `prompt ${i}: ${e.detail}`, 'invalid_request_error', e.code, paramOf(e));
    }
    return e;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // /v1/chat/completions

  private async chat(body: Json, res: http.ServerResponse): Promise<void> {
    const adapter = this.adapterFor(body);
    const { n, stream, includeUsage } = this.common(body);
    const messages = chatMessages(body.messages);
    this.checkPromptChars(
      messages.reduce((a, m) => a + m.content.length, 0),
      'messages',
    );
    const wantLogprobs = optBool(body, 'logprobs') ?? false;
    const top = optInt(body, 'top_logprobs', 0, this.limits.maxLogprobs);
    if (top !== undefined && !wantLogprobs) throw bad('top_logprobs needs logprobs: true', 'top_logprobs');
    for (const unsupported of ['tools', 'functions']) {
      const v = body[unsupported];
      if (Array.isArray(v) && v.length > 0)
        throw bad(`${unsupported} are not supported by this server`, unsupported);
    }
    const format = body.response_format as Json | null | undefined;
    if (format && format.type !== 'text')
      throw bad('only response_format { type: "text" } is supported', 'response_format');
    const template = body.chat_template;
    if (template !== undefined && template !== null && typeof template !== 'string') {
      throw bad('chat_template must be a string', 'chat_template');
    }
    if (typeof template === 'string' && !this.trustTemplates) {
      throw bad(
        'chat_template in a request is refused: this server does not run templates sent by clients (start it with ' +
          '--trust-request-chat-template to allow them)',
        'chat_template',
      );
    }
    const kwargs = body.chat_template_kwargs;
    if (kwargs !== undefined && kwargs !== null && (typeof kwargs !== 'object' || Array.isArray(kwargs))) {
      throw bad('chat_template_kwargs must be an object', 'chat_template_kwargs');
    }
    let ids: number[];
    try {
      ids = this.engine.renderChat(messages, {
        addGenerationPrompt: optBool(body, 'add_generation_prompt') ?? true,
        addSpecialTokens: optBool(body, 'add_special_tokens') ?? false,
        chatTemplate: (template as string | null | undefined) ?? undefined,
        vars: (kwargs as Json | null | undefined) ?? undefined,
      });
    } catch (e) {
      if (isPolyglotError(e)) throw bad(e.message, 'messages', e.code);
      throw e;
    }
    if (ids.length === 0) throw bad('the rendered conversation is empty', 'messages');
    const maxPos = this.engine.model.config.maxPositionEmbeddings;
    const maxTokens = this.maxTokens(
      body,
      ['max_completion_tokens', 'max_tokens'],
      Math.max(1, Math.min(this.limits.maxTokens, maxPos - ids.length)),
      1,
    );
    const params = this.params(body, maxTokens, wantLogprobs ? (top ?? 0) : null);
    this.checkQueue();

    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = now();
    const model = body.model as string;
    const controller = abortOnClose(res);
    const sse = stream ? new EventStream(res, this.headers()) : null;
    const chunk = (choices: Json[], usage?: Json) =>
      sse?.send({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        choices,
        ...(usage ? { usage } : {}),
      });
    const events: TokenEvent[][] = Array.from({ length: n }, () => []);
    const streamed = new Array<string>(n).fill('');
    if (sse) {
      for (let k = 0; k < n; k++) {
        chunk([{ index: k, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      }
    }
    let result: GenerateResult;
    try {
      result = await this.engine.submit(
        { inputIds: ids, params, n, trim: false },
        {
          adapter,
          signal: controller.signal,
          onToken: (k, e) => {
            events[k].push(e);
            if (!sse || (e.text === '' && !wantLogprobs)) return;
            streamed[k] += e.text;
            const lp = wantLogprobs ? { content: this.chatLogprobs(ids, events[k], 1) } : null;
            chunk([{ index: k, delta: { content: e.text }, logprobs: lp, finish_reason: null }]);
          },
        },
      );
    } catch (e) {
      controller.abort();
      throw e;
    }
    const choices = result.choices ?? [result];
    const usage = this.usage([result], [ids.length]);
    const tokenIds = optBool(body, 'return_token_ids') ?? false;
    if (sse) {
      choices.forEach((c, k) => {
        const rest = c.text.slice(streamed[k].length);
        chunk([
          {
            index: k,
            delta: rest ? { content: rest } : {},
            logprobs: null,
            finish_reason: c.finishReason,
            stop_reason: c.stopReason,
          },
        ]);
      });
      if (includeUsage) chunk([], usage);
      sse.end();
      return;
    }
    this.send(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: choices.map((c, k) => ({
        index: k,
        message: { role: 'assistant', content: c.text },
        logprobs: wantLogprobs ? { content: this.chatLogprobs(ids, events[k]) } : null,
        finish_reason: c.finishReason,
        stop_reason: c.stopReason,
        ...(tokenIds ? { token_ids: c.outputIds } : {}),
      })),
      usage,
      ...(tokenIds ? { prompt_token_ids: ids } : {}),
    });
  }

  /** Chat logprobs of the last `last` (default all) of a sample's tokens `all`. */
  private chatLogprobs(promptIds: number[], all: TokenEvent[], last = all.length): Json[] {
    const first = all.length - last;
    return all.slice(first).map((e, j) => {
      const prev = first + j > 0 ? all[first + j - 1].token : (promptIds.at(-1) ?? null);
      return {
        token: e.piece,
        logprob: e.logprob ?? 0,
        bytes: utf8(e.piece),
        top_logprobs: (e.top ?? []).map((t) => {
          const text = this.tokenText(prev, t.token, false);
          return { token: text, logprob: t.logprob, bytes: utf8(text) };
        }),
      };
    });
  }
}

/** Server-sent events (`data: …` lines), ended by `data: [DONE]`, as OpenAI streams. */
class EventStream {
  constructor(
    private readonly res: http.ServerResponse,
    headers: Record<string, string>,
  ) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', ...headers });
    res.flushHeaders();
  }

  send(value: unknown): void {
    if (!this.res.writableEnded) this.res.write(`data: ${JSON.stringify(value)}\n\n`);
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end('data: [DONE]\n\n');
  }
}

/** An AbortController aborted when the client goes away before the response is complete. */
function abortOnClose(res: http.ServerResponse): AbortController {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller;
}

function concatLogprobs(a: Json, b: Json): Json {
  const out: Json = {};
  for (const k of ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset']) {
    out[k] = [...(a[k] as unknown[]), ...(b[k] as unknown[])];
  }
  return out;
}

/** Chat messages: `content` a string or a list of text parts (joined). */
function chatMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw bad('messages must be a non-empty list', 'messages');
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null || typeof (m as Json).role !== 'string') {
      throw bad(`messages[${i}] must be an object with a string role`, 'messages');
    }
    const { content, ...rest } = m as Json;
    let text: string;
    if (typeof content === 'string') text = content;
    else if (content === null || content === undefined) text = '';
    else if (
      Array.isArray(content) &&
      content.every((p) => typeof p === 'object' && p !== null && (p as Json).type === 'text')
    ) {
      text = content.map((p) => String((p as Json).text ?? '')).join('');
    } else {
      throw bad(`messages[${i}].content must be a string or a list of text parts`, 'messages');
    }
    return { ...rest, role: rest.role as string, content: text };
  });
}

function paramOf(e: RequestError): string | null {
  return e.cause instanceof SamplingParamError ? e.cause.param : null;
}

/** An error as the API answers it. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof RequestError)
    return new ApiError(400, e.detail, 'invalid_request_error', e.code, paramOf(e));
  if (e instanceof SamplingParamError)
    return new ApiError(400, e.message, 'invalid_request_error', e.code, e.param);
  if (e instanceof RequestAbortedError) return new ApiError(499, e.message, 'invalid_request_error', e.code);
  if (isPolyglotError(e)) {
    if (e.code === 'ENGINE_CLOSED') return new ApiError(503, e.message, 'server_error', e.code);
    if (e.code === 'ADAPTER_UNKNOWN') return new ApiError(404, e.message, 'not_found_error', e.code);
    return new ApiError(400, e.message, 'invalid_request_error', e.code);
  }
  return new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error');
}
