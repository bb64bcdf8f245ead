// Small data files for the built-in tasks, written by the tests (X-CSQA, XNLI and AlpacaEval are not in ../shared).
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

export const XCSQA_DE = [
  ['Wo findet man viele Bücher?', ['Bibliothek', 'Wüste', 'Ozean', 'Himmel', 'Vulkan'], 'A'],
  ['Womit schreibt man?', ['Löffel', 'Stift', 'Teller', 'Schuh', 'Baum'], 'B'],
  ['Was trinkt man bei Durst?', ['Sand', 'Stein', 'Wasser', 'Holz', 'Eisen'], 'C'],
] as const;

export const XNLI_DE = [
  { premise: 'Der Hund schläft im Garten.', hypothesis: 'Ein Tier ruht draußen.', label: 0 },
  { premise: 'Sie kaufte gestern Brot.', hypothesis: 'Sie hat nie Brot gekauft.', label: 2 },
  { premise: 'Das Konzert beginnt um acht.', hypothesis: 'Das Konzert ist ausverkauft.', label: 1 },
];

/**
 * A data folder with one subfolder per task, as `--data-dir` reads it: xquad (a link to ../shared's XQuAD), xcsqa
 * (X-CSR layout), xnli (a Hugging Face export), paper-alpaca-eval (the paper's layout; Icelandic is a link to the
 * paper sample).
 */
export function writeTaskData(dir: string, shared: { xquad: string; alpacaIs: string }): string {
  mkdirSync(path.join(dir, 'xcsqa', 'X-CSR_datasets', 'X-CSQA', 'de'), { recursive: true });
  mkdirSync(path.join(dir, 'xnli'), { recursive: true });
  mkdirSync(path.join(dir, 'paper-alpaca-eval'), { recursive: true });
  symlinkSync(shared.xquad, path.join(dir, 'xquad'));
  writeFileSync(
    path.join(dir, 'xcsqa', 'X-CSR_datasets', 'X-CSQA', 'de', 'dev.jsonl'),
    jsonl(
      XCSQA_DE.map(([stem, options, key], i) => ({
        id: `q${i}`,
        lang: 'de',
        question: { stem, choices: options.map((text, k) => ({ label: 'ABCDE'[k], text })) },
        answerKey: key,
      })),
    ),
  );
  writeFileSync(path.join(dir, 'xnli', 'xnli.de.jsonl'), jsonl(XNLI_DE));
  writeFileSync(
    path.join(dir, 'paper-alpaca-eval', 'alpaca_eval_instructions_de.json'),
    jsonl([
      { instruction: '"Wie backe ich ein einfaches Brot?"' },
      { instruction: '"Nenne drei Städte in Deutschland."' },
      { instruction: '"Was ist die Hauptstadt von Island?"' },
    ]),
  );
  symlinkSync(shared.alpacaIs, path.join(dir, 'paper-alpaca-eval', 'alpaca_eval_instructions_is.json'));
  return dir;
}
