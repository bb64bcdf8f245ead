// Property-based / fuzz test support (fast-check): a fixed seed so CI is reproducible, case counts scaled by
// POLYGLOT_FUZZ_RUNS (a multiplier, e.g. POLYGLOT_FUZZ_RUNS=100 for a long local run; POLYGLOT_FUZZ_SEED picks
// another seed), a `fuzz: <parser> <N> cases` line per property, and the check that a failure is one of our
// typed errors.
import fc from 'fast-check';

export const FUZZ_SEED = Number(process.env.POLYGLOT_FUZZ_SEED ?? 20231220);
const SCALE = Math.max(1, Number(process.env.POLYGLOT_FUZZ_RUNS ?? 1) || 1);

/** `base` cases, times POLYGLOT_FUZZ_RUNS. */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * SCALE));
}

/** Cases run per parser in this process, for the summary line. */
export const fuzzCounts = new Map<string, number>();

/** Record and print that `name` ran `n` cases. */
export function recordCases(name: string, n: number): void {
  fuzzCounts.set(name, (fuzzCounts.get(name) ?? 0) + n);
  console.log(`      fuzz: ${name} ${n} cases`);
}

/** Run a property with the fixed seed; throws fast-check's report (with the seed and path to replay) on failure. */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IAsyncPropertyWithHooks<Ts> | fc.IPropertyWithHooks<Ts>,
  numRuns: number,
): Promise<void> {
  const details = await fc.check(property as fc.IAsyncProperty<Ts>, { seed: FUZZ_SEED, numRuns });
  if (details.failed) {
    const cause = details.errorInstance;
    const why = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
    throw new Error(`${name}: ${fc.defaultReportMessage(details) ?? 'property failed'}\n${why}`, { cause });
  }
  recordCases(name, details.numRuns);
}

/** A typed polyglot error (`isPolyglotError === true`, a string `code`, a message that says something). */
export function isTypedError(e: unknown): e is Error & { code: string; isPolyglotError: true } {
  return (
    e instanceof Error &&
    (e as { isPolyglotError?: unknown }).isPolyglotError === true &&
    typeof (e as { code?: unknown }).code === 'string' &&
    e.message.length > 10
  );
}

/**
 * Runs `f`: success gives `{ ok: true, value }`, one of our typed errors `{ ok: false, error }` (its message
 * must mention each of `mentions`, e.g. the file); anything else (TypeError, RangeError, a plain Error) is
 * rethrown wrapped so that fast-check reports it as a failure of the property.
 */
export async function parsesOrTyped<T>(
  f: () => T | Promise<T>,
  ...mentions: string[]
): Promise<{ ok: true; value: T } | { ok: false; error: Error & { code: string } }> {
  try {
    return { ok: true, value: await f() };
  } catch (e) {
    if (!isTypedError(e)) {
      const err = new Error(`not a typed polyglot error: ${(e as Error)?.stack ?? String(e)}`);
      throw err;
    }
    for (const m of mentions) {
      if (!e.message.includes(m))
        throw new Error(`typed error ${e.code} does not mention ${m}: ${e.message}`);
    }
    return { ok: false, error: e };
  }
}

/** Synchronous {@link parsesOrTyped}. */
export function parsesOrTypedSync<T>(
  f: () => T,
  ...mentions: string[]
): { ok: true; value: T } | { ok: false; error: Error & { code: string } } {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (!isTypedError(e)) throw new Error(`not a typed polyglot error: ${(e as Error)?.stack ?? String(e)}`);
    for (const m of mentions) {
      if (!e.message.includes(m))
        throw new Error(`typed error ${e.code} does not mention ${m}: ${e.message}`);
    }
    return { ok: false, error: e };
  }
}

/** Byte-level mutations of a valid file: what a damaged download, a bad disk or a hostile file looks like. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array };

/** Mutations of a file of `size` bytes (positions are drawn as fractions, so they suit any size). */
export function mutationArb(size: number): fc.Arbitrary<Mutation> {
  const at = fc.nat({ max: Math.max(0, size - 1) });
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at, bit: fc.nat({ max: 7 }) }),
    fc.record({
      kind: fc.constant('set' as const),
      at,
      value: fc.constantFrom(0x00, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x2d),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({
      kind: fc.constant('insert' as const),
      at,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({
      kind: fc.constant('overwrite' as const),
      at,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  );
}

export function applyMutation(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = Math.min(m.at, bytes.length);
  switch (m.kind) {
    case 'flip': {
      const out = bytes.slice();
      if (at < out.length) out[at]! ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      const out = bytes.slice();
      if (at < out.length) out[at] = m.value;
      return out;
    }
    case 'truncate':
      return bytes.slice(0, at);
    case 'insert': {
      const out = new Uint8Array(bytes.length + m.bytes.length);
      out.set(bytes.subarray(0, at));
      out.set(m.bytes, at);
      out.set(bytes.subarray(at), at + m.bytes.length);
      return out;
    }
    case 'delete': {
      const end = Math.min(bytes.length, at + m.length);
      const out = new Uint8Array(bytes.length - (end - at));
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(end), at);
      return out;
    }
    case 'overwrite': {
      const out = bytes.slice();
      for (let i = 0; i < m.bytes.length && at + i < out.length; i++) out[at + i] = m.bytes[i]!;
      return out;
    }
  }
}

/** One to four mutations applied in turn. */
export function mutationsArb(size: number): fc.Arbitrary<Mutation[]> {
  return fc.array(mutationArb(size), { minLength: 1, maxLength: 4 });
}

export function applyMutations(bytes: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  return ms.reduce((b, m) => applyMutation(b, m), bytes);
}

/**
 * JSON-ish values for "wrong types" mutations: numbers at the edges (negative, huge, fractional, -0), strings,
 * booleans, null, nested arrays and objects.
 */
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    -0,
    1.5,
    2 ** 31,
    2 ** 32,
    2 ** 40,
    2 ** 53,
    2 ** 64,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER,
    '',
    'NaN',
    '__proto__',
    'constructor',
    null,
    true,
    false,
    [],
    {},
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** `[[[[…]]]]` / `{"a":{"a":…}}` nested `depth` deep. */
export function deepJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}
