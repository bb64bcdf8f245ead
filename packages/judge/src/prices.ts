import { readFileSync } from 'node:fs';
import type { Usage } from './cache.js';
import { JudgeError } from './errors.js';

/** Price of a model in US dollars per million tokens. */
export interface Price {
  input: number;
  output: number;
  /** Share of the price the Batch API charges; default 0.5. */
  batch?: number;
}

/** Prices by model name; a name also prices its dated versions (`gpt-4o` prices `gpt-4o-2024-11-20`). */
export type PriceTable = Record<string, Price>;

/**
 * A snapshot of OpenAI's list prices (USD per 1M tokens, standard tier) for models used as judges. Prices change:
 * pass your own table (`--prices FILE`) for anything that matters; models not listed have an unknown cost.
 */
export const DEFAULT_PRICES: PriceTable = {
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  'gpt-3.5-turbo-0125': { input: 0.5, output: 1.5 },
  'gpt-3.5-turbo-1106': { input: 1.0, output: 2.0 },
  'gpt-3.5-turbo-0613': { input: 1.5, output: 2.0 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4-1106-preview': { input: 10, output: 30 },
  'gpt-4-0125-preview': { input: 10, output: 30 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-2024-05-13': { input: 5, output: 15 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
};

function checkPrice(model: string, p: unknown, where: string): Price {
  const o = p as Record<string, unknown>;
  const ok = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (typeof p !== 'object' || p === null || !ok(o.input) || !ok(o.output)) {
    throw new JudgeError(
      'bad-prices',
      `${where}: the price of ${JSON.stringify(model)} must be {"input": USD per 1M tokens, "output": USD per 1M tokens}`,
    );
  }
  if (o.batch !== undefined && !(ok(o.batch) && (o.batch as number) <= 1)) {
    throw new JudgeError(
      'bad-prices',
      `${where}: "batch" of ${JSON.stringify(model)} must be a share in [0, 1]`,
    );
  }
  return { input: o.input as number, output: o.output as number, batch: o.batch as number | undefined };
}

/** Reads a price table: a JSON object `{ "<model>": { "input": 1.0, "output": 2.0 }, … }` (USD per 1M tokens). */
export function loadPrices(file: string): PriceTable {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new JudgeError('bad-prices', `${file}: cannot read a JSON price table (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new JudgeError('bad-prices', `${file}: expected a JSON object of model → price`);
  }
  const table: PriceTable = {};
  for (const [model, p] of Object.entries(raw)) table[model] = checkPrice(model, p, file);
  return table;
}

/** The price of a model: its own entry, else the longest name it extends at a `-` (`gpt-4o-mini-2024-07-18`). */
export function priceFor(table: PriceTable, model: string | null | undefined): Price | undefined {
  if (!model) return undefined;
  if (Object.hasOwn(table, model)) return table[model];
  let best: string | undefined;
  for (const name of Object.keys(table)) {
    if (model.startsWith(`${name}-`) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? undefined : table[best];
}

/** Dollars for the usage at the price; the batch share applies to Batch API answers. */
export function costOf(usage: Usage | null, price: Price | undefined, batch = false): number | null {
  if (!usage || !price) return null;
  const c = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1e6;
  return batch ? c * (price.batch ?? 0.5) : c;
}
