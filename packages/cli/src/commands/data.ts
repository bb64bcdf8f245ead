// `polyglot data`: get | tag | mix | render | stats. Rendering combines @polyglot/model's templates (Jinja,
// tokenizer chat templates, built-ins) with @polyglot/data's record handling (data does not depend on model).
import path from 'node:path';
import {
  buildMix,
  DATASETS,
  datasetStats,
  getDataset,
  type JsonObject,
  type LanguageStats,
  listDatasets,
  type MixStrategy,
  PAPER_LANGUAGE_ORDER,
  PAPER_PER_LANGUAGE,
  PAPER_PROMPT_TEMPLATE,
  PAPER_TOTAL,
  type PromptInput,
  paperMixNames,
  readMixSources,
  renderRecords,
  tagFile,
  tagRecords,
  writeJsonlAtomic,
  writeMix,
} from '@polyglot/data';
import { loadLidModel } from '@polyglot/lid';
import {
  BUILTIN_TEMPLATES,
  type ChatMessage,
  isBuiltinTemplate,
  loadTemplate,
  type PromptTemplate,
  renderChatTemplate,
  renderTemplate,
  Tokenizer,
  templateFromSource,
} from '@polyglot/model';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';

const RECIPES = ['paper', 'quota', 'proportional', 'temperature', 'uniform'] as const;
type Recipe = (typeof RECIPES)[number];

function list(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function countArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) {
      throw new InvalidArgumentError(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

function probArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
      throw new InvalidArgumentError(`${name} must be a number in [0, 1], got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

function numberArg(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new InvalidArgumentError(`${name} must be a number ≥ 0, got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

/** `en=100,de=50` → { en: 100, de: 50 }. */
function quotaArg(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of list(v)) {
    const m = /^([^=\s]+)\s*=\s*(\d+)$/.exec(part);
    if (!m)
      throw new InvalidArgumentError(
        `--quota takes LANG=COUNT pairs separated by commas, got ${JSON.stringify(part)}`,
      );
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

async function emitJsonl(
  io: Io,
  output: string | undefined,
  rows: AsyncIterable<JsonObject>,
): Promise<number> {
  if (output) return writeJsonlAtomic(output, rows);
  let n = 0;
  for await (const r of rows) {
    io.stdout(`${JSON.stringify(r)}\n`);
    n++;
  }
  return n;
}

function fixed(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

function statsTable(rows: LanguageStats[], tokens: boolean, turns: boolean): string {
  const head = [
    'lang',
    'records',
    'chars/rec',
    'words/rec',
    ...(tokens ? ['tokens/rec', 'tokens'] : []),
    ...(turns ? ['turns/rec'] : []),
  ];
  const body = rows.map((r) => [
    r.lang,
    String(r.records),
    fixed(r.chars.mean),
    fixed(r.words.mean),
    ...(tokens ? [fixed(r.tokens!.mean), String(r.tokens!.total)] : []),
    ...(turns ? [fixed(r.turns!.mean)] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return `${[line(head), ...body.map(line)].join('\n')}\n`;
}

export function registerData(program: Command, io: Io): void {
  const data = program
    .command('data')
    .description('Datasets, language mixes and prompt templates (@polyglot/data)');

  data
    .command('get')
    .description(
      `Download a named dataset into the cache ($POLYGLOT_CACHE/datasets, default ~/.cache/polyglot), resumable and checksummed: ${Object.keys(DATASETS).join(', ')}`,
    )
    .argument('[name]', 'dataset name (see --list)')
    .option('--list', 'list the known datasets with their sources and licences')
    .option('--lang <codes>', 'only these languages / variants (comma-separated)', list)
    .option('--split <splits>', 'only these splits (comma-separated, e.g. train,test)', list)
    .option('--cache-dir <dir>', 'cache root (default $POLYGLOT_CACHE or ~/.cache/polyglot)')
    .option('--base-url <url>', 'fetch <url>/<file> instead (a mirror laid out like the cache folder)')
    .option('--sha256 <hex>', 'expected sha256 of the one selected file')
    .option('--force', 'download again even if cached (verified against the pinned hash)')
    .option(
      '--offline',
      'use only the cache (also POLYGLOT_OFFLINE=1); say what is missing and where it goes',
    )
    .option('--verify', 're-hash cached files against the hashes recorded at download')
    .action(
      async (
        name: string | undefined,
        opts: {
          list?: boolean;
          lang?: string[];
          split?: string[];
          cacheDir?: string;
          baseUrl?: string;
          sha256?: string;
          force?: boolean;
          offline?: boolean;
          verify?: boolean;
        },
      ) => {
        if (opts.list || !name) {
          if (!opts.list)
            throw new UsageError(
              `data get: name a dataset (${Object.keys(DATASETS).join(', ')}) or use --list`,
            );
          for (const d of listDatasets()) {
            const langs = [...new Set(d.files.map((f) => f.lang).filter(Boolean))];
            io.stdout(
              `${d.name}\n  ${d.title}\n  ${d.homepage} — ${d.license}\n  ${d.layout}\n${langs.length ? `  --lang ${langs.join(',')}\n` : ''}`,
            );
          }
          return;
        }
        let last = 0;
        const r = await getDataset(name, {
          ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
          ...(opts.lang ? { langs: opts.lang } : {}),
          ...(opts.split ? { splits: opts.split } : {}),
          ...(opts.baseUrl ? { baseUrl: opts.baseUrl } : {}),
          ...(opts.sha256 ? { sha256: opts.sha256 } : {}),
          ...(opts.force ? { force: true } : {}),
          ...(opts.offline ? { offline: true } : {}),
          ...(opts.verify ? { verify: true } : {}),
          onProgress: (file, bytes, total) => {
            if (bytes - last < 32 * 2 ** 20 && bytes !== total) return;
            last = bytes;
            const mb = (b: number) => (b / 2 ** 20).toFixed(1);
            io.stderr(
              `polyglot: ${path.basename(file)}: ${mb(bytes)}${total ? ` / ${mb(total)}` : ''} MiB\n`,
            );
          },
        });
        for (const f of r.files) {
          if (f.check === 'recorded' && !f.cached) {
            io.stderr(
              `polyglot: note: no published sha256 for ${path.basename(f.path)}; pinned ${f.sha256} in ${f.path}.sha256 — later downloads must match it\n`,
            );
          }
          io.stdout(`${JSON.stringify({ dataset: r.name, ...f })}\n`);
        }
      },
    );

  data
    .command('tag')
    .description(
      'Add the language (top LID label) and its confidence to every JSONL record; below --threshold the label is null',
    )
    .argument('<input>', 'JSON Lines file')
    .option('--field <key>', 'text field to identify', 'text')
    .option('--output <file>', 'write here (atomically) instead of stdout')
    .option(
      '--model <model>',
      'lid176 (embedded), openlid (the paper’s; `polyglot data get openlid`), glotlid, or a path',
      'lid176',
    )
    .option('--cache-dir <dir>', 'folder of downloaded LID models (default $POLYGLOT_CACHE/lid)')
    .option('--threshold <p>', 'minimum confidence for a label (the paper: 0.8)', probArg('--threshold'), 0)
    .option('--label-key <key>', 'field for the label', 'lang')
    .option('--prob-key <key>', 'field for the confidence', 'lang_prob')
    .option(
      '--no-clean',
      'identify the text as it is (default: newlines and ### Human:/### Assistant: removed, as the paper)',
    )
    .action(
      async (
        input: string,
        opts: {
          field: string;
          output?: string;
          model: string;
          cacheDir?: string;
          threshold: number;
          labelKey: string;
          probKey: string;
          clean: boolean;
        },
      ) => {
        const model = await loadLidModel(opts.model, opts.cacheDir ? { cacheDir: opts.cacheDir } : {});
        const options = {
          field: opts.field,
          threshold: opts.threshold,
          labelKey: opts.labelKey,
          probKey: opts.probKey,
          clean: opts.clean,
        };
        const summary = opts.output
          ? await tagFile(input, opts.output, model, options)
          : await tagRecords(input, model, options, (r) => io.stdout(`${JSON.stringify(r)}\n`));
        io.stderr(
          `polyglot: ${JSON.stringify({ tagged: summary, model: opts.model, ...(opts.output ? { output: opts.output } : {}) })}\n`,
        );
      },
    );

  data
    .command('mix')
    .description(
      "Build language mixes, seeded and reproducible: the paper's recipe (Mono, Multi-k, leave-one-out, all), per-language quotas, proportional, temperature or uniform sampling; writes JSONL and a manifest",
    )
    .argument('<inputs...>', 'language-tagged JSONL (or .json) files')
    .addOption(new Option('--recipe <recipe>', 'how the mix is drawn').choices([...RECIPES]).default('paper'))
    .option(
      '--mix <names>',
      `paper recipe: mono, multi-K, loo-LANG, all (comma-separated; default ${paperMixNames().join(',')})`,
      list,
    )
    .option('--total <n>', `size of the mix (paper recipe default ${PAPER_TOTAL})`, countArg('--total'))
    .option(
      '--per-lang <n>',
      `paper recipe: records of each added language (default ${PAPER_PER_LANGUAGE})`,
      countArg('--per-lang'),
    )
    .option(
      '--order <langs>',
      `paper recipe: order of added languages (default ${PAPER_LANGUAGE_ORDER.join(',')})`,
      list,
    )
    .option('--base-lang <lang>', 'paper recipe: the base language that fills the rest', 'en')
    .option('--quota <pairs>', 'quota recipe: LANG=COUNT,… (e.g. en=100,de=50)', quotaArg)
    .option('--fill <lang>', 'quota recipe: a language that fills up to --total')
    .option(
      '--alpha <a>',
      'temperature recipe: weights (n_l/N)^alpha; 1 proportional, 0 uniform',
      numberArg('--alpha'),
    )
    .option(
      '--langs <langs>',
      'proportional/temperature/uniform: the languages (default: all in the input)',
      list,
    )
    .option('--seed <n>', 'random seed', countArg('--seed'), 42)
    .option(
      '--min-confidence <p>',
      'leave out records whose confidence is lower (paper recipe default 0.8)',
      probArg('--min-confidence'),
    )
    .option('--lang-field <key>', 'field with the language tag', 'lang')
    .option('--prob-field <key>', 'field with the tag confidence', 'lang_prob')
    .option('--replacement', 'let a language give more records than it has (they repeat)')
    .addOption(
      new Option('--output-order <order>', 'order of the output records')
        .choices(['shuffled', 'input', 'language'])
        .default('shuffled'),
    )
    .option('--output <file>', 'the mix (one mix only); its manifest goes next to it')
    .option('--out-dir <dir>', 'write each mix to <dir>/<name>.jsonl with <name>.manifest.json')
    .action(
      async (
        inputs: string[],
        opts: {
          recipe: Recipe;
          mix?: string[];
          total?: number;
          perLang?: number;
          order?: string[];
          baseLang: string;
          quota?: Record<string, number>;
          fill?: string;
          alpha?: number;
          langs?: string[];
          seed: number;
          minConfidence?: number;
          langField: string;
          probField: string;
          replacement?: boolean;
          outputOrder: 'shuffled' | 'input' | 'language';
          output?: string;
          outDir?: string;
        },
      ) => {
        const strategies: MixStrategy[] = [];
        const need = (flag: string, v: unknown) => {
          if (v === undefined) throw new UsageError(`data mix --recipe ${opts.recipe}: ${flag} is required`);
        };
        switch (opts.recipe) {
          case 'paper':
            for (const mix of opts.mix ?? paperMixNames(opts.order ?? PAPER_LANGUAGE_ORDER)) {
              strategies.push({
                kind: 'paper',
                mix,
                total: opts.total ?? PAPER_TOTAL,
                perLanguage: opts.perLang ?? PAPER_PER_LANGUAGE,
                order: opts.order ?? PAPER_LANGUAGE_ORDER,
                english: opts.baseLang,
              });
            }
            break;
          case 'quota':
            need('--quota', opts.quota ?? opts.fill);
            strategies.push({
              kind: 'quota',
              quotas: opts.quota ?? {},
              ...(opts.fill ? { fill: opts.fill } : {}),
              ...(opts.total !== undefined ? { total: opts.total } : {}),
            });
            break;
          case 'temperature':
            need('--alpha', opts.alpha);
            need('--total', opts.total);
            strategies.push({
              kind: 'temperature',
              total: opts.total!,
              alpha: opts.alpha!,
              ...(opts.langs ? { languages: opts.langs } : {}),
            });
            break;
          default:
            need('--total', opts.total);
            strategies.push({
              kind: opts.recipe,
              total: opts.total!,
              ...(opts.langs ? { languages: opts.langs } : {}),
            });
        }
        if (opts.recipe !== 'paper' && opts.mix)
          throw new UsageError('--mix names mixes of --recipe paper only');
        if (!opts.output === !opts.outDir)
          throw new UsageError('data mix: give --output FILE (one mix) or --out-dir DIR');
        if (opts.output && strategies.length > 1) {
          throw new UsageError(
            `data mix: ${strategies.length} mixes (${opts.mix?.join(', ') ?? paperMixNames().join(', ')}) need --out-dir, or pick one with --mix`,
          );
        }
        const { records, sources } = await readMixSources(inputs);
        const minConfidence = opts.minConfidence ?? (opts.recipe === 'paper' ? 0.8 : undefined);
        for (const s of strategies) {
          const result = buildMix(records, s, {
            seed: opts.seed,
            langField: opts.langField,
            probField: opts.probField,
            ...(minConfidence !== undefined ? { minConfidence } : {}),
            replacement: Boolean(opts.replacement),
            order: opts.outputOrder,
          });
          const out = opts.output ?? path.join(opts.outDir!, `${result.name}.jsonl`);
          const w = await writeMix(out, result, sources);
          io.stdout(
            `${JSON.stringify({ mix: result.name, path: w.path, manifest: w.manifest, records: result.records.length, counts: result.counts })}\n`,
          );
        }
      },
    );

  data
    .command('render')
    .description(
      "Render prompts: each record's instruction (or conversation) through a template; adds the text as --out-field",
    )
    .argument('<input>', 'JSON Lines file')
    .requiredOption(
      '--template <template>',
      `paper (### Human: {{ instruction }}### Assistant:), a built-in chat template (${Object.keys(BUILTIN_TEMPLATES).join(', ')}), tokenizer (the --tokenizer's chat template), or a Jinja file`,
    )
    .option(
      '--tokenizer <dir>',
      'tokenizer directory: its chat template (--template tokenizer) and special tokens',
    )
    .option('--field <key>', 'instruction field', 'instruction')
    .option(
      '--conversation-field <key>',
      'render a Guanaco conversation (### Human: …### Assistant: …) from this field instead',
    )
    .option('--messages-field <key>', 'render an array of {role, content} messages from this field instead')
    .option('--system <text>', 'a system message (chat templates; text templates get the variable "system")')
    .addOption(
      new Option(
        '--quotes <mode>',
        'quotes wrapping a whole instruction: keep (as the paper, by a bug) or strip',
      )
        .choices(['keep', 'strip'])
        .default('keep'),
    )
    .option('--generation-prompt', 'conversation mode: end with the opening of an assistant turn')
    .option('--no-generation-prompt', 'instruction mode: do not end with the opening of the assistant turn')
    .option('--out-field <key>', 'field for the rendered text', 'prompt')
    .option('--output <file>', 'write here (atomically) instead of stdout')
    .action(
      async (
        input: string,
        opts: {
          template: string;
          tokenizer?: string;
          field: string;
          conversationField?: string;
          messagesField?: string;
          system?: string;
          quotes: 'keep' | 'strip';
          generationPrompt?: boolean;
          outField: string;
          output?: string;
        },
      ) => {
        const conversation = Boolean(opts.conversationField || opts.messagesField);
        if (opts.conversationField && opts.messagesField) {
          throw new UsageError('data render: give --conversation-field or --messages-field, not both');
        }
        const tokenizer = opts.tokenizer ? await Tokenizer.fromDir(opts.tokenizer) : null;
        let template: PromptTemplate | null = null;
        if (opts.template === 'tokenizer') {
          if (!tokenizer) throw new UsageError('data render --template tokenizer needs --tokenizer DIR');
        } else if (opts.template === 'paper') {
          template = templateFromSource(PAPER_PROMPT_TEMPLATE, 'paper');
        } else {
          template = await loadTemplate(opts.template);
        }
        if (template?.kind === 'text' && conversation) {
          throw new UsageError(
            `data render: ${opts.template} is a text template (it renders {{ instruction }}); conversations need a chat template (${Object.keys(BUILTIN_TEMPLATES).join(', ')}, tokenizer, or a Jinja file over messages)`,
          );
        }
        // instruction mode ends with the assistant's turn opening unless --no-generation-prompt; conversation
        // mode renders the whole conversation unless --generation-prompt
        const addGenerationPrompt = conversation
          ? opts.generationPrompt === true
          : opts.generationPrompt !== false;
        const render = (inp: PromptInput): string => {
          if (template?.kind === 'text') {
            return renderTemplate(template, {
              instruction: inp.instruction,
              ...(opts.system !== undefined ? { system: opts.system } : {}),
            });
          }
          const messages: ChatMessage[] = inp.messages
            ? inp.messages.map((m) => ({ ...m }))
            : [{ role: 'user', content: inp.instruction! }];
          if (opts.system !== undefined && messages[0]?.role !== 'system') {
            messages.unshift({ role: 'system', content: opts.system });
          }
          if (tokenizer) {
            const chatTemplate = template
              ? isBuiltinTemplate(template.name)
                ? template.name
                : template.source
              : undefined;
            return tokenizer.applyChatTemplate(messages, {
              addGenerationPrompt,
              ...(chatTemplate !== undefined ? { chatTemplate } : {}),
            });
          }
          return renderChatTemplate(template!, { messages, addGenerationPrompt });
        };
        const n = await emitJsonl(
          io,
          opts.output,
          renderRecords(input, {
            render,
            field: opts.field,
            ...(opts.conversationField ? { conversationField: opts.conversationField } : {}),
            ...(opts.messagesField ? { messagesField: opts.messagesField } : {}),
            quotes: opts.quotes,
            outField: opts.outField,
          }),
        );
        if (opts.output) io.stderr(`polyglot: rendered ${n} records → ${opts.output}\n`);
      },
    );

  data
    .command('stats')
    .description('Per-language counts and lengths (characters, words; tokens with --tokenizer) of a dataset')
    .argument('<file>', 'JSON Lines (or .json array) file')
    .option(
      '--field <key>',
      'text field (default: text, instruction, prompt or system, whichever the records have)',
    )
    .option('--lang-field <key>', 'language field', 'lang')
    .option('--tokenizer <dir>', 'count tokens with this tokenizer (no special tokens)')
    .option('--json', 'print the statistics as JSON')
    .action(
      async (
        file: string,
        opts: { field?: string; langField: string; tokenizer?: string; json?: boolean },
      ) => {
        const tokenizer = opts.tokenizer ? await Tokenizer.fromDir(opts.tokenizer) : null;
        const stats = await datasetStats(file, {
          ...(opts.field ? { field: opts.field } : {}),
          langField: opts.langField,
          ...(tokenizer
            ? { countTokens: (t: string) => tokenizer.encode(t, { addSpecialTokens: false }).length }
            : {}),
        });
        if (opts.json) {
          io.stdout(`${JSON.stringify(stats, null, 2)}\n`);
          return;
        }
        const turns = stats.all.turns !== undefined;
        io.stdout(
          `${file}: ${stats.records} records, field "${stats.field}"${tokenizer ? `, tokens of ${opts.tokenizer}` : ''}\n`,
        );
        io.stdout(statsTable([...stats.languages, stats.all], Boolean(tokenizer), turns));
      },
    );
}
