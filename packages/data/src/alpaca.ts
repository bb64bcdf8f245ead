// AlpacaEval instruction files: the original `alpaca_eval.json` (a JSON array of {instruction, output,
// generator, dataset}) and the paper's translations `alpaca_eval_instructions_{lang}.json` (JSON Lines of
// {"instruction": …}, wrapped in double quotes).
import { applyQuoteMode, type QuoteMode } from './quotes.js';
import { optionalString, readPlacedRecords, stringField } from './records.js';

export interface AlpacaEvalItem {
  instruction: string;
  /** The reference output (original file only). */
  output?: string;
  generator?: string;
  dataset?: string;
  /** 0-based position in the file: the item's id across the parallel translations. */
  index: number;
}

export interface ReadAlpacaEvalOptions {
  /** `keep` (default: the text as stored) or `strip` the quotes that wrap translated instructions. */
  quotes?: QuoteMode;
}

/** Reads an AlpacaEval instruction file (JSON array or JSON Lines); errors name file:line or the element. */
export async function readAlpacaEval(
  file: string,
  options: ReadAlpacaEvalOptions = {},
): Promise<AlpacaEvalItem[]> {
  const quotes = options.quotes ?? 'keep';
  return (await readPlacedRecords(file)).map(({ value, where }, index) => {
    const item: AlpacaEvalItem = {
      instruction: applyQuoteMode(stringField(value, 'instruction', where), quotes),
      index,
    };
    for (const key of ['output', 'generator', 'dataset'] as const) {
      const v = optionalString(value, key, where);
      if (v !== undefined) item[key] = v;
    }
    return item;
  });
}
