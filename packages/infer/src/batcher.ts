import { DecodeState, type LlamaModel } from '@polyglot/model';
import type { GenerateChoice } from './engine.js';
import { InferError } from './errors.js';
import type { Row } from './row.js';

/** What the batcher needs of its engine. */
export interface BatcherHost {
  readonly model: LlamaModel;
  readonly padId: number;
  /** Runs `fn` when no other call of the engine uses the model (calls never interleave on it). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** Counters of a {@link ContinuousBatcher} since it started. */
export interface BatcherStats {
  /** Decode steps run (one forward pass over the running rows of one adapter). */
  steps: number;
  /** Rows advanced by those steps (tokens decoded), plus first tokens sampled from prefills. */
  tokens: number;
  /** Prefill passes (newcomers of one adapter admitted together). */
  prefills: number;
  /** Requests admitted. */
  admitted: number;
  /** Times running rows were regrouped (finished rows dropped and/or newcomers added). */
  regroups: number;
  /** The most rows decoded by one step. */
  maxBatch: number;
}

interface Entry {
  row: Row;
  adapter: string | null;
  resolve: (choice: GenerateChoice) => void;
  reject: (error: unknown) => void;
  aborted: boolean;
  settled: boolean;
}

/** The rows decoding with one adapter: `entries[b]` is row b of `state`. */
interface Group {
  state: DecodeState | null;
  entries: Entry[];
}

/** Thrown to a request whose caller aborted it (e.g. the HTTP client went away). */
export class RequestAbortedError extends InferError {
  constructor() {
    super('REQUEST_ABORTED', 'the request was aborted before it finished');
    this.name = 'RequestAbortedError';
  }
}

/** Event-loop iterations between two rounds (each may accept one connection and read what has arrived). */
const IO_ITERATIONS_PER_STEP = 16;

const keyOf = (adapter: string | null): string => (adapter === null ? '\0base' : `a:${adapter}`);

/**
 * Continuous batching over a {@link LlamaModel}: requests join and leave the running batch between decode steps.
 *
 * Each round (one `exclusive` slot of the engine, so other engine calls interleave between rounds):
 * 1. waiting requests are admitted while fewer than `maxRows` run: those of one adapter are prefilled together as
 *    their own left-padded batch and sample their first token;
 * 2. for every adapter with changes, the rows still running (finished and aborted ones dropped) and the newcomers
 *    become one batch with {@link DecodeState.combine}, which copies each row's KV cache aligned at the last slot
 *    — a row attends to exactly the keys it had, so its tokens do not depend on who else runs (with host attention
 *    its logits are bitwise those of its own batch);
 * 3. one decode step per adapter advances every running row by a token, sampled with the row's own seeded sampler.
 * A request finishes (its promise resolves) the step its last token is sampled. Rows of different adapters run in
 * separate batches (a batch shares one adapter), each stepped every round.
 */
export class ContinuousBatcher {
  private readonly waiting: Entry[] = [];
  private readonly groups = new Map<string, Group>();
  private looping = false;
  readonly stats: BatcherStats = { steps: 0, tokens: 0, prefills: 0, admitted: 0, regroups: 0, maxBatch: 0 };

  constructor(
    private readonly host: BatcherHost,
    /** Most rows decoding at once (all adapters together); vLLM's max_num_seqs. */
    readonly maxRows: number,
  ) {}

  /** Rows decoding now. */
  get running(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.entries.filter((e) => !e.settled).length;
    return n;
  }

  /** Requests waiting to be admitted. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Queues a row (a prepared, seeded request) to decode with `adapter`; resolves with its result when it finishes.
   * An aborted `signal` drops it (waiting or running) and rejects with {@link RequestAbortedError}.
   */
  submit(row: Row, adapter: string | null, signal?: AbortSignal): Promise<GenerateChoice> {
    if (row.done) return Promise.resolve(row.result()); // max_tokens 0
    return new Promise<GenerateChoice>((resolve, reject) => {
      const entry: Entry = { row, adapter, resolve, reject, aborted: false, settled: false };
      if (signal) {
        if (signal.aborted) {
          reject(new RequestAbortedError());
          return;
        }
        signal.addEventListener(
          'abort',
          () => {
            entry.aborted = true;
            const i = this.waiting.indexOf(entry);
            if (i >= 0) {
              this.waiting.splice(i, 1);
              this.settle(entry);
            }
          },
          { once: true },
        );
      }
      this.waiting.push(entry);
      this.kick();
    });
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop().finally(() => {
      this.looping = false;
      if (this.waiting.length > 0 || this.running > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (this.waiting.length > 0 || this.running > 0) {
      try {
        await this.host.exclusive(() => this.round());
      } catch (e) {
        // The engine refused the round (closed): every request fails with its error.
        this.failAll(e);
        return;
      }
      // Let I/O in (new requests, responses going out) between steps. libuv accepts one new connection per
      // event-loop iteration, so one iteration per step would let a burst of connections in one per step (the
      // last waiting for hundreds of steps under load): give it several; an idle iteration costs microseconds.
      for (let i = 0; i < IO_ITERATIONS_PER_STEP; i++)
        await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private failAll(error: unknown): void {
    for (const e of this.waiting.splice(0)) this.settle(e, error);
    for (const g of this.groups.values()) {
      for (const e of g.entries) this.settle(e, error);
      g.state?.dispose();
    }
    this.groups.clear();
  }

  private settle(e: Entry, error?: unknown): void {
    if (e.settled) return;
    e.settled = true;
    if (error !== undefined) e.reject(error);
    else if (e.aborted) e.reject(new RequestAbortedError());
    else e.resolve(e.row.result());
  }

  /** One round: admit, regroup, step (see the class comment). */
  private async round(): Promise<void> {
    const V = this.host.model.config.vocabSize;
    for (const g of this.groups.values()) for (const e of g.entries) if (e.aborted) this.settle(e);

    // 1. Admission.
    let free = this.maxRows - this.running;
    const admitted = new Map<string, Entry[]>();
    while (free > 0 && this.waiting.length > 0) {
      const e = this.waiting.shift()!;
      const key = keyOf(e.adapter);
      admitted.set(key, [...(admitted.get(key) ?? []), e]);
      free--;
    }
    const fresh = new Map<string, DecodeState>();
    for (const [key, entries] of admitted) {
      this.stats.admitted += entries.length;
      let state: DecodeState;
      try {
        state = await this.prefill(entries);
      } catch (error) {
        for (const e of entries) this.settle(e, error);
        continue;
      }
      this.stats.prefills++;
      entries.forEach((e, b) => {
        if (e.aborted) {
          this.settle(e);
          return;
        }
        e.row.step(state.logits.subarray(b * V, (b + 1) * V));
        this.stats.tokens++;
        if (e.row.done) this.settle(e);
      });
      fresh.set(key, state);
      if (!this.groups.has(key)) this.groups.set(key, { state: null, entries: [] });
    }

    // 2. Regroup and 3. step, per adapter.
    for (const [key, g] of this.groups) {
      try {
        this.regroup(g, fresh.get(key), admitted.get(key) ?? []);
        if (g.state === null) {
          this.groups.delete(key);
          continue;
        }
        await g.state.decodeStep(g.entries.map((e) => e.row.pending));
        this.stats.steps++;
        this.stats.tokens += g.entries.length;
        this.stats.maxBatch = Math.max(this.stats.maxBatch, g.entries.length);
        const logits = g.state.logits;
        g.entries.forEach((e, b) => {
          if (e.settled) return;
          e.row.step(logits.subarray(b * V, (b + 1) * V));
          if (e.row.done) this.settle(e);
        });
      } catch (error) {
        for (const e of g.entries) this.settle(e, error);
        g.state?.dispose();
        this.groups.delete(key);
      }
    }
  }

  /** Drops the group's finished rows and appends the newcomers' unfinished ones (one KV-cache copy). */
  private regroup(g: Group, fresh: DecodeState | undefined, newcomers: Entry[]): void {
    const keep = g.entries.map((e, b) => (e.settled ? -1 : b)).filter((b) => b >= 0);
    const joining = newcomers.map((e, b) => (e.settled ? -1 : b)).filter((b) => b >= 0);
    if (fresh === undefined && keep.length === g.entries.length) return; // nothing changed
    const parts: { state: DecodeState; rows: number[] }[] = [];
    if (g.state !== null && keep.length > 0) parts.push({ state: g.state, rows: keep });
    else g.state?.dispose();
    if (fresh !== undefined) {
      if (joining.length > 0) parts.push({ state: fresh, rows: joining });
      else fresh.dispose();
    }
    const entries = [...keep.map((b) => g.entries[b]), ...joining.map((b) => newcomers[b])];
    if (parts.length === 0) {
      g.state = null;
    } else if (parts.length === 1 && parts[0].rows.length === parts[0].state.batch) {
      g.state = parts[0].state; // all rows of one batch: nothing to copy
    } else {
      // Every row has sampled from its last logits already: only the caches are carried over.
      g.state = DecodeState.combine(parts, { logits: false });
      this.stats.regroups++;
    }
    g.entries = entries;
  }

  private async prefill(entries: Entry[]): Promise<DecodeState> {
    const { model, padId } = this.host;
    const adapter = entries[0].adapter;
    const before = model.activeAdapter;
    if (adapter !== before) model.setActiveAdapter(adapter);
    try {
      const maxNew = Math.max(...entries.map((e) => e.row.req.params.max_tokens));
      return await model.prefill(
        entries.map((e) => e.row.req.ids),
        { padId, maxNewTokens: maxNew },
      );
    } finally {
      if (model.activeAdapter !== before) model.setActiveAdapter(before);
    }
  }
}
