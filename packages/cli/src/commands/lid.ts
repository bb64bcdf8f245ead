import { readFile } from 'node:fs/promises';
import {
  downloadModel,
  evalPathFor,
  type FidelityResult,
  fidelityOfFile,
  KNOWN_MODELS,
  type LidModel,
  loadLidModel,
  readJsonlLines,
  summarizeFidelity,
  tagFile,
  tagRecords,
  writeEvalCsv,
  writeFileAtomic,
} from '@polyglot/lid';
import { Argument, type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';

const MODEL_HELP =
  'lid176 (embedded, default), openlid or glotlid (after `polyglot lid download`), or a .bin/.ftz path';

function kArg(v: string): number {
  if (v === 'all') return -1;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || (n < 1 && n !== -1)) {
    throw new InvalidArgumentError(
      `-k must be a positive integer, or -1 / all for every label, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

function probArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError(`--threshold must be a probability in [0, 1], got ${JSON.stringify(v)}`);
  }
  return n;
}

interface ModelOptions {
  model: string;
  cacheDir?: string;
}

function load(opts: ModelOptions): Promise<LidModel> {
  return loadLidModel(opts.model, opts.cacheDir ? { cacheDir: opts.cacheDir } : {});
}

const modelOption = () => new Option('--model <model>', MODEL_HELP).default('lid176');
const cacheOption = () =>
  new Option('--cache-dir <dir>', 'folder of downloaded models (default $POLYGLOT_CACHE/lid)');

/** Writes to --output atomically, or to stdout. */
async function emit(io: Io, output: string | undefined, lines: string[]): Promise<void> {
  const text = lines.length ? `${lines.join('\n')}\n` : '';
  if (output) await writeFileAtomic(output, text);
  else io.stdout(text);
}

export function registerLid(program: Command, io: Io): void {
  const lid = program
    .command('lid')
    .description('fastText language identification and language fidelity (@polyglot/lid)');

  lid
    .command('predict')
    .description(
      'Predict the language of each line of a text file, or of a field of each JSONL record; prints JSONL {"labels","probs","lang","script"}',
    )
    .addOption(modelOption())
    .addOption(cacheOption())
    .option('-k, --k <n>', 'labels per prediction (-1 or all: every label)', kArg, 1)
    .option('--threshold <p>', 'drop labels below this probability', probArg, 0)
    .option('--input <file>', 'input: .txt (one text per line) or .jsonl (with --field)')
    .option('--field <key>', 'JSONL field to read (default: text)')
    .option('--text <text>', 'predict this text instead of a file')
    .option('--output <file>', 'write the JSONL here (atomically) instead of stdout')
    .action(
      async (
        opts: ModelOptions & {
          k: number;
          threshold: number;
          input?: string;
          field?: string;
          text?: string;
          output?: string;
        },
      ) => {
        if ((opts.input === undefined) === (opts.text === undefined)) {
          throw new UsageError('lid predict: give either --input FILE or --text TEXT');
        }
        const model = await load(opts);
        const predictOpts = { k: opts.k, threshold: opts.threshold };
        const line = (text: string) => JSON.stringify(model.identify(text, predictOpts));
        const out: string[] = [];
        if (opts.text !== undefined) {
          out.push(line(opts.text));
        } else if (/\.jsonl?$/i.test(opts.input!) || opts.field) {
          const key = opts.field ?? 'text';
          for await (const rec of readJsonlLines(opts.input!)) {
            const v = rec.value[key];
            if (typeof v !== 'string') {
              throw new UsageError(
                `${opts.input}:${rec.line}: field "${key}" is ${v === undefined ? 'missing' : typeof v}; choose the text field with --field`,
              );
            }
            out.push(line(v));
          }
        } else {
          let text: string;
          try {
            text = await readFile(opts.input!, 'utf8');
          } catch (e) {
            throw new UsageError(`--input ${opts.input}: cannot read: ${(e as Error).message}`);
          }
          const lines = text.split('\n');
          if (lines.at(-1) === '') lines.pop();
          for (const l of lines) out.push(line(l));
        }
        await emit(io, opts.output, out);
      },
    );

  lid
    .command('fidelity')
    .description(
      'Language fidelity (lang_match, tgt_lang) of run files: one JSON line per file, then the mean and std over files (seeds)',
    )
    .requiredOption('--input <files...>', 'run files (JSONL with the prompt source and the response)')
    .option('--source-key <key>', 'field with the prompt source text', 'source')
    .option('--response-key <key>', 'field with the response', 'system')
    .option('--lang <code>', 'expected response language (default: from the file name, e.g. …_de-none-…)')
    .addOption(
      new Option(
        '--empty <policy>',
        'empty responses: fail (count as misses), skip, or predict (as the paper)',
      )
        .choices(['fail', 'skip', 'predict'])
        .default('fail'),
    )
    .addOption(
      new Option('--match <mode>', 'lang_match compares languages or exact labels')
        .choices(['language', 'label'])
        .default('language'),
    )
    .option('--eval-out <file>', 'write the one-row .eval CSV here (one input file only)')
    .option('--eval', 'write <run>.eval next to each input file')
    .addOption(modelOption())
    .addOption(cacheOption())
    .action(
      async (
        opts: ModelOptions & {
          input: string[];
          sourceKey: string;
          responseKey: string;
          lang?: string;
          empty: 'fail' | 'skip' | 'predict';
          match: 'language' | 'label';
          evalOut?: string;
          eval?: boolean;
        },
      ) => {
        if (opts.evalOut && opts.input.length !== 1) {
          throw new UsageError(
            '--eval-out takes one input file; use --eval to write <run>.eval next to each',
          );
        }
        const model = await load(opts);
        const results: FidelityResult[] = [];
        for (const file of opts.input) {
          const r = await fidelityOfFile(file, model, {
            sourceKey: opts.sourceKey,
            responseKey: opts.responseKey,
            ...(opts.lang !== undefined ? { lang: opts.lang } : {}),
            empty: opts.empty,
            match: opts.match,
          });
          results.push(r);
          if (opts.evalOut) await writeEvalCsv(opts.evalOut, r);
          if (opts.eval) await writeEvalCsv(evalPathFor(file), r);
          io.stdout(`${JSON.stringify(r)}\n`);
          if (r.lang === null) {
            io.stderr(`polyglot: note: ${file}: no expected language (pass --lang), so tgt_lang is null\n`);
          }
        }
        if (results.length > 1) io.stdout(`${JSON.stringify({ summary: summarizeFidelity(results) })}\n`);
      },
    );

  lid
    .command('tag')
    .description(
      'Add <key>_lang (top-1 label, e.g. deu_Latn) to every JSONL record, as the paper’s assign_langs',
    )
    .requiredOption('--input <file>', 'JSONL file')
    .requiredOption('--keys <keys>', 'comma-separated fields to tag, e.g. source,system')
    .option('--output <file>', 'write here (atomically) instead of stdout')
    .option('--prob', 'also add <key>_lang_prob')
    .addOption(modelOption())
    .addOption(cacheOption())
    .action(async (opts: ModelOptions & { input: string; keys: string; output?: string; prob?: boolean }) => {
      const keys = opts.keys
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean);
      if (keys.length === 0) throw new UsageError('--keys needs at least one field name');
      const model = await load(opts);
      const options = { keys, prob: Boolean(opts.prob) };
      if (opts.output) {
        const r = await tagFile(opts.input, opts.output, model, options);
        io.stderr(`polyglot: tagged ${r.records} records → ${opts.output}\n`);
      } else {
        await tagRecords(opts.input, model, options, (line) => io.stdout(`${line}\n`));
      }
    });

  lid
    .command('download')
    .description('Fetch and verify OpenLID or GlotLID into the cache (resumable)')
    .addArgument(new Argument('<model>', 'openlid or glotlid').choices(Object.keys(KNOWN_MODELS)))
    .addOption(cacheOption())
    .option('--sha256 <hex>', 'expected sha256 of the file as served')
    .option('--url <url>', 'download from this URL instead of the public one')
    .option('--force', 'download again even if cached')
    .action(
      async (name: string, opts: { cacheDir?: string; sha256?: string; url?: string; force?: boolean }) => {
        let last = 0;
        const r = await downloadModel(name, {
          ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
          ...(opts.sha256 ? { sha256: opts.sha256 } : {}),
          ...(opts.url ? { url: opts.url } : {}),
          force: Boolean(opts.force),
          onProgress: (bytes, total) => {
            if (bytes - last < 64 * 2 ** 20 && bytes !== total) return;
            last = bytes;
            const mb = (b: number) => (b / 2 ** 20).toFixed(0);
            io.stderr(`polyglot: ${name}: ${mb(bytes)}${total ? ` / ${mb(total)}` : ''} MiB\n`);
          },
        });
        if (!r.verified && !r.cached) {
          io.stderr(
            `polyglot: note: no published sha256 to check ${name} against; its sha256 is ${r.sha256} (recorded in ${r.path}.sha256; pin it with --sha256)\n`,
          );
        }
        io.stdout(`${JSON.stringify(r)}\n`);
      },
    );
}
