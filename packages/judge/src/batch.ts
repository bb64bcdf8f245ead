import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { toFile } from 'openai';
import type { ChatMessage, ChatParams, JudgeClient } from './client.js';
import { toCachedCompletion } from './client.js';
import { JudgeError } from './errors.js';
import { writeFileAtomic } from './jsonl.js';
import { type Clock, realClock } from './limiter.js';

/** Batch API mode: the requests not in the cache go out as batch jobs first; their answers fill the cache. */
export interface BatchOptions {
  /**
   * Where the ids of submitted batches are kept until their results are in, so that a rerun after a kill polls
   * them instead of submitting again; the request files are written next to it.
   */
  stateFile: string;
  /** Time between two status checks; default 30,000 ms. */
  pollIntervalMs?: number;
  /** Most requests in one batch job; default 50,000 (OpenAI's limit). */
  maxRequestsPerBatch?: number;
  /** Default `24h`. */
  completionWindow?: '24h';
  /** Give up waiting after this long (the batches stay recorded: rerun to go on polling); default no limit. */
  maxWaitMs?: number;
  onNotice?: (message: string) => void;
  clock?: Clock;
}

export interface BatchReport {
  /** Batch jobs submitted in this run. */
  submitted: number;
  /** Batch jobs found in the state file and polled. */
  resumed: number;
  /** Answers the batches brought into the cache. */
  answered: number;
  /** Requests the batches did not answer (errors, expiry): sent directly afterwards. */
  unanswered: number;
}

interface StateBatch {
  id: string;
  input_file_id: string;
  requests: number;
  file: string;
}

interface State {
  model: string;
  batches: StateBatch[];
}

const DONE = new Set(['completed', 'failed', 'expired', 'cancelled']);

function readState(file: string): State | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as State;
    if (!Array.isArray(s.batches)) throw new Error('no "batches" list');
    return s;
  } catch (e) {
    throw new JudgeError(
      'bad-batch-state',
      `${file}: unreadable batch state (${(e as Error).message}); delete it to submit the batch again`,
    );
  }
}

/**
 * Sends `requests` through the OpenAI Batch API: writes the request JSON Lines (`custom_id` = the cache key,
 * `POST /v1/chat/completions`, the same body as a direct request), uploads it (`purpose: batch`), creates the
 * batch, records its id in `stateFile`, polls until it ends, and stores every answer in the client's cache (priced
 * at the batch rate). A rerun while a batch is recorded polls it instead of submitting anew. Requests it did not
 * answer are left to the caller (the run sends them directly). With a budget, only the requests whose worst
 * case fits in it are submitted.
 */
export async function runBatch(
  client: JudgeClient,
  requests: { messages: readonly ChatMessage[]; params: ChatParams }[],
  opts: BatchOptions,
): Promise<BatchReport> {
  const clock = opts.clock ?? realClock;
  const notice = opts.onNotice ?? (() => {});
  const report: BatchReport = { submitted: 0, resumed: 0, answered: 0, unanswered: 0 };
  const bodies = new Map<string, Record<string, unknown>>();
  const json = client.jsonMode !== 'off';
  for (const r of requests) {
    if (client.lookup(r.messages, r.params)) continue;
    const body = client.body(r.messages, r.params, json);
    bodies.set(client.key(body), body);
  }
  let state = readState(opts.stateFile);
  if (state && state.model !== client.model) {
    throw new JudgeError(
      'bad-batch-state',
      `${opts.stateFile}: batches of judge model ${state.model}, not ${client.model}; delete the file to start over`,
    );
  }
  if (state) {
    report.resumed = state.batches.length;
    notice(
      `resuming ${state.batches.length} recorded batch job(s): ${state.batches.map((b) => b.id).join(', ')}`,
    );
  } else {
    if (bodies.size === 0) return report;
    const keys = client.affordable([...bodies.values()], 'batch');
    if (keys < bodies.size)
      notice(`budget: ${keys} of ${bodies.size} requests fit in --max-cost at the batch rate`);
    const chosen = [...bodies.entries()].slice(0, keys);
    const per = opts.maxRequestsPerBatch ?? 50_000;
    state = { model: client.model, batches: [] };
    for (let start = 0, n = 0; start < chosen.length; start += per, n++) {
      const chunk = chosen.slice(start, start + per);
      const text = chunk
        .map(([key, body]) =>
          JSON.stringify({ custom_id: key, method: 'POST', url: '/v1/chat/completions', body }),
        )
        .join('\n');
      const file = `${opts.stateFile.replace(/\.json$/, '')}-${n}.requests.jsonl`;
      writeFileAtomic(file, `${text}\n`);
      const uploaded = await client.retrying('upload the batch file', async () =>
        client.openai.files.create({
          file: await toFile(Buffer.from(`${text}\n`), path.basename(file)),
          purpose: 'batch',
        }),
      );
      const created = await client.retrying('create the batch', () =>
        client.openai.batches.create({
          input_file_id: uploaded.id,
          endpoint: '/v1/chat/completions',
          completion_window: opts.completionWindow ?? '24h',
          metadata: { source: '@polyglot/judge' },
        }),
      );
      state.batches.push({ id: created.id, input_file_id: uploaded.id, requests: chunk.length, file });
      writeFileAtomic(opts.stateFile, `${JSON.stringify(state, null, 2)}\n`);
      report.submitted++;
      notice(`submitted batch ${created.id} (${chunk.length} requests, ${path.basename(file)})`);
    }
  }
  const started = clock.now();
  const pending = new Map(state.batches.map((b) => [b.id, b]));
  const finished: { batch: StateBatch; status: string; output: string | null; error: string | null }[] = [];
  for (;;) {
    for (const b of [...pending.values()]) {
      const info = await client.retrying(`check batch ${b.id}`, () => client.openai.batches.retrieve(b.id));
      if (DONE.has(info.status)) {
        pending.delete(b.id);
        const counts = info.request_counts;
        notice(
          `batch ${b.id}: ${info.status}${counts ? ` (${counts.completed} answered, ${counts.failed} failed of ${counts.total})` : ''}`,
        );
        finished.push({
          batch: b,
          status: info.status,
          output: info.output_file_id ?? null,
          error: info.error_file_id ?? null,
        });
      }
    }
    if (pending.size === 0) break;
    if (opts.maxWaitMs !== undefined && clock.now() - started > opts.maxWaitMs) {
      throw new JudgeError(
        'batch-pending',
        `batch job(s) ${[...pending.keys()].join(', ')} still running after ${Math.round(opts.maxWaitMs / 1000)} s; ` +
          `rerun the same command later to collect them (recorded in ${opts.stateFile})`,
      );
    }
    await clock.sleep(opts.pollIntervalMs ?? 30_000);
  }
  for (const f of finished) {
    if (!f.output) continue;
    const resp = await client.retrying(`download the results of ${f.batch.id}`, () =>
      client.openai.files.content(f.output!),
    );
    const text = await resp.text();
    const rows: {
      key: string;
      body: Record<string, unknown>;
      completion: ReturnType<typeof toCachedCompletion>;
    }[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const key = o.custom_id;
      const r = o.response as { status_code?: number; body?: unknown } | null | undefined;
      if (typeof key !== 'string' || !bodies.has(key) || !r || r.status_code !== 200) continue;
      rows.push({ key, body: bodies.get(key)!, completion: toCachedCompletion(r.body, client.model, true) });
    }
    report.answered += client.ingest(rows);
  }
  report.unanswered = [...bodies.keys()].filter((k) => !client.cache.has(k)).length;
  if (report.unanswered > 0)
    notice(`${report.unanswered} request(s) not answered by the batch: sending them directly`);
  rmSync(opts.stateFile, { force: true });
  for (const b of state.batches) rmSync(b.file, { force: true });
  return report;
}
