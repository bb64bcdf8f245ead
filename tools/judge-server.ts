// Test support: a scripted OpenAI-compatible judge on 127.0.0.1 (chat completions, and the Files and Batches
// endpoints of the Batch API). Each test passes a script that decides, per request, the answer: JSON or malformed
// content, an HTTP error with headers (429 + Retry-After, 500 …), a delay, a dropped connection. Every request is
// recorded so that tests can assert what was sent (and that nothing was). Run as a script
// (`node --import tsx tools/judge-server.ts [delayMs]`) it serves the default script in its own process and
// prints its base URL on stdout.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface RecordedRequest {
  /** 1-based arrival number among chat requests (0 for other endpoints). */
  n: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
  at: number;
}

export interface ScriptedReply {
  /** HTTP status; default 200. */
  status?: number;
  /** The message content of a 200 answer. */
  content?: string | null;
  /** A whole JSON body to send instead (errors, odd answers). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Drop the connection without answering. */
  destroy?: boolean;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens?: number } | null;
  model?: string;
  fingerprint?: string | null;
}

export type Script = (req: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;

/** A deterministic score in 1..6 for a request (the same request always gets the same one). */
export function scoreFor(body: any): number {
  const text = JSON.stringify(body?.messages ?? '');
  return (createHash('sha256').update(text).digest()[0] % 6) + 1;
}

/** The default answer: `{"reasoning", "score"}` with {@link scoreFor}, after `delayMs`. */
export function jsonAnswer(delayMs = 0): Script {
  return (req) => ({ content: JSON.stringify({ reasoning: 'ok', score: scoreFor(req.body) }), delayMs });
}

export interface JudgeServer {
  /** Base URL ending in /v1. */
  url: string;
  port: number;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** The chat completion requests only. */
  chat(): RecordedRequest[];
  /** Replace the script. */
  setScript(s: Script): void;
  /** Batch jobs: how many status checks a job takes before it completes (default 2). */
  batchPolls: number;
  close(): Promise<void>;
}

function usageOf(body: any): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const prompt = Math.ceil(JSON.stringify(body?.messages ?? '').length / 4);
  return { prompt_tokens: prompt, completion_tokens: 20, total_tokens: prompt + 20 };
}

function completionBody(req: RecordedRequest, r: ScriptedReply): unknown {
  if (r.body !== undefined) return r.body;
  const usage = r.usage === undefined ? usageOf(req.body) : r.usage;
  return {
    id: `chatcmpl-${req.n}`,
    object: 'chat.completion',
    created: 1_700_000_000,
    model: r.model ?? req.body?.model ?? 'judge',
    system_fingerprint: r.fingerprint === undefined ? 'fp_test' : r.fingerprint,
    choices: [
      { index: 0, message: { role: 'assistant', content: r.content ?? null }, finish_reason: 'stop' },
    ],
    ...(usage
      ? {
          usage: {
            ...usage,
            total_tokens: usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens,
          },
        }
      : {}),
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The file part of a multipart/form-data upload (what the openai client's files.create sends). */
function multipartFile(raw: Buffer, contentType: string): { purpose: string | null; text: string } {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const b = boundary ? (boundary[1] ?? boundary[2]) : '';
  const parts = raw.toString('utf8').split(`--${b}`);
  let purpose: string | null = null;
  let text = '';
  for (const part of parts) {
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    const head = part.slice(0, sep);
    const content = part.slice(sep + 4).replace(/\r\n$/, '');
    if (/name="purpose"/.test(head)) purpose = content;
    if (/name="file"/.test(head)) text = content;
  }
  return { purpose, text };
}

export async function startJudgeServer(script: Script = jsonAnswer()): Promise<JudgeServer> {
  let current = script;
  const requests: RecordedRequest[] = [];
  const files = new Map<string, string>();
  const batches = new Map<string, { job: any; checks: number }>();
  let chatN = 0;
  let ids = 0;
  const sockets = new Set<import('node:net').Socket>();
  const self: JudgeServer = {
    url: '',
    port: 0,
    requests,
    chat: () => requests.filter((r) => r.n > 0),
    setScript: (s) => {
      current = s;
    },
    batchPolls: 2,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  };

  const answer = async (
    rec: RecordedRequest,
  ): Promise<{ status: number; body: unknown; r: ScriptedReply }> => {
    const r = await current(rec);
    const status = r.status ?? 200;
    const body =
      status === 200
        ? completionBody(rec, r)
        : (r.body ?? {
            error: { message: `scripted ${status}`, type: 'server_error', code: null, param: null },
          });
    return { status, body, r };
  };

  const server = http.createServer(async (req, res) => {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const p = url.pathname;
    const isChat = req.method === 'POST' && p.endsWith('/chat/completions');
    let body: any = null;
    if ((req.headers['content-type'] ?? '').startsWith('application/json') && raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = raw.toString('utf8');
      }
    }
    const rec: RecordedRequest = {
      n: isChat ? ++chatN : 0,
      method: req.method ?? '',
      path: `${p}${url.search}`,
      headers: req.headers,
      body,
      at: performance.now(),
    };
    requests.push(rec);
    try {
      if (isChat) {
        const { status, body: out, r } = await answer(rec);
        if (r.delayMs) await new Promise((resolve) => setTimeout(resolve, r.delayMs));
        if (r.destroy) {
          req.socket.destroy();
          return;
        }
        if (res.destroyed) return;
        send(res, status, out, r.headers);
        return;
      }
      if (req.method === 'POST' && p === '/v1/files') {
        const { purpose, text } = multipartFile(raw, req.headers['content-type'] ?? '');
        const id = `file-${++ids}`;
        files.set(id, text);
        rec.body = { purpose, lines: text.split('\n').filter((l) => l.trim() !== '').length };
        send(res, 200, {
          id,
          object: 'file',
          bytes: text.length,
          created_at: 1,
          filename: 'batch.jsonl',
          purpose,
        });
        return;
      }
      if (req.method === 'POST' && p === '/v1/batches') {
        const id = `batch_${++ids}`;
        const job = {
          id,
          object: 'batch',
          endpoint: body.endpoint,
          input_file_id: body.input_file_id,
          completion_window: body.completion_window,
          status: 'validating',
          output_file_id: null,
          error_file_id: null,
          created_at: 1,
          request_counts: { total: 0, completed: 0, failed: 0 },
          metadata: body.metadata ?? null,
        };
        batches.set(id, { job, checks: 0 });
        send(res, 200, job);
        return;
      }
      const bm = /^\/v1\/batches\/([^/]+)$/.exec(p);
      if (req.method === 'GET' && bm) {
        const b = batches.get(bm[1]!);
        if (!b) return send(res, 404, { error: { message: 'no such batch', type: 'invalid_request_error' } });
        b.checks++;
        if (b.job.status !== 'completed' && b.checks >= self.batchPolls) {
          const lines = (files.get(b.job.input_file_id) ?? '').split('\n').filter((l) => l.trim() !== '');
          const out: string[] = [];
          const errors: string[] = [];
          for (const line of lines) {
            const o = JSON.parse(line);
            const inner: RecordedRequest = {
              n: ++chatN,
              method: 'POST',
              path: o.url,
              headers: {},
              body: o.body,
              at: 0,
            };
            requests.push(inner);
            const { status, body: resp } = await answer(inner);
            const row = {
              id: `batch_req_${inner.n}`,
              custom_id: o.custom_id,
              response: { status_code: status, request_id: `req_${inner.n}`, body: resp },
              error: null,
            };
            (status === 200 ? out : errors).push(JSON.stringify(row));
          }
          const outId = `file-${++ids}`;
          files.set(outId, out.map((l) => `${l}\n`).join(''));
          let errId: string | null = null;
          if (errors.length > 0) {
            errId = `file-${++ids}`;
            files.set(errId, errors.map((l) => `${l}\n`).join(''));
          }
          Object.assign(b.job, {
            status: 'completed',
            output_file_id: outId,
            error_file_id: errId,
            request_counts: { total: lines.length, completed: out.length, failed: errors.length },
          });
        } else if (b.job.status === 'validating') {
          b.job.status = 'in_progress';
        }
        send(res, 200, b.job);
        return;
      }
      const fm = /^\/v1\/files\/([^/]+)\/content$/.exec(p);
      if (req.method === 'GET' && fm) {
        const f = files.get(fm[1]!);
        if (f === undefined)
          return send(res, 404, { error: { message: 'no such file', type: 'invalid_request_error' } });
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(f);
        return;
      }
      send(res, 404, { error: { message: `no route ${req.method} ${p}`, type: 'invalid_request_error' } });
    } catch (e) {
      if (!res.headersSent) send(res, 500, { error: { message: String(e), type: 'server_error' } });
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.port = (server.address() as AddressInfo).port;
  self.url = `http://127.0.0.1:${self.port}/v1`;
  return self;
}

function isMain(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const delay = Number(process.argv[2] ?? 0);
  startJudgeServer(jsonAnswer(delay)).then((s) => {
    process.stdout.write(`${s.url}\n`);
    process.on('SIGTERM', () => {
      void s.close().then(() => process.exit(0));
    });
  });
}
