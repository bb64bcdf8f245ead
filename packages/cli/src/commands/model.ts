import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  ADAPTER_CONFIG_FILE,
  type Adapter,
  formatInspect,
  inspectModel,
  readAdapter,
  Tokenizer,
} from '@polyglot/model';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { planned } from '../planned.js';

export function registerModel(program: Command, io: Io): void {
  const model = program
    .command('model')
    .description('Inspect Hugging Face checkpoints, tokenize text, export models (@polyglot/model)');

  model
    .command('inspect')
    .description(
      'Print architecture, parameter count, dtypes, shards and tokenizer of a model directory (or the summary of a PEFT adapter directory)',
    )
    .argument('<dir>', 'Hugging Face model directory (config.json + safetensors) or PEFT adapter directory')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      if (!existsSync(path.join(dir, 'config.json')) && existsSync(path.join(dir, ADAPTER_CONFIG_FILE))) {
        const summary = adapterSummary(await readAdapter(dir));
        io.stdout(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : formatAdapter(summary));
        return;
      }
      const report = await inspectModel(dir);
      const tokenizer = existsSync(path.join(dir, 'tokenizer.json'))
        ? (await Tokenizer.fromDir(dir)).summary()
        : null;
      if (opts.json) {
        io.stdout(`${JSON.stringify({ ...report, tokenizer }, null, 2)}\n`);
        return;
      }
      io.stdout(withNewline(formatInspect(report)));
      io.stdout(tokenizer ? formatTokenizer(tokenizer) : 'tokenizer: none (no tokenizer.json)\n');
    });

  model
    .command('tokenize')
    .description("Encode text with a model directory's tokenizer and print the ids as JSON")
    .argument('<dir>', 'model or tokenizer directory (tokenizer.json, tokenizer_config.json)')
    .requiredOption('--text <text>', 'the text to encode')
    .option('--no-special', 'do not add special tokens (BOS)')
    .option('--tokens', 'print {"ids":[…],"tokens":[…]} instead of the bare id list')
    .action(async (dir: string, opts: { text: string; special: boolean; tokens?: boolean }) => {
      const tok = await Tokenizer.fromDir(dir);
      const ids = tok.encode(opts.text, { addSpecialTokens: opts.special });
      const out = opts.tokens ? { ids, tokens: ids.map((id) => tok.idToToken(id)) } : ids;
      io.stdout(`${JSON.stringify(out)}\n`);
    });

  model
    .command('decode')
    .description("Decode token ids (a JSON array) with a model directory's tokenizer")
    .argument('<dir>', 'model or tokenizer directory')
    .requiredOption('--ids <json>', 'token ids as a JSON array, e.g. "[1, 15043]"')
    .option('--skip-special', 'drop special tokens from the text')
    .action(async (dir: string, opts: { ids: string; skipSpecial?: boolean }) => {
      let ids: unknown;
      try {
        ids = JSON.parse(opts.ids);
      } catch {
        throw new UsageError(`--ids must be a JSON array of integers, got ${JSON.stringify(opts.ids)}`);
      }
      if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i) && i >= 0)) {
        throw new UsageError(`--ids must be a JSON array of non-negative integers, got ${opts.ids}`);
      }
      const tok = await Tokenizer.fromDir(dir);
      io.stdout(
        `${JSON.stringify(tok.decode(ids as number[], { skipSpecialTokens: Boolean(opts.skipSpecial) }))}\n`,
      );
    });

  planned(model, 'export', 'Export a checkpoint to GGUF (f32, f16, q8_0) for llama.cpp', 15);
}

function formatTokenizer(t: ReturnType<Tokenizer['summary']>): string {
  return `tokenizer:\n${Object.entries(t)
    .map(([k, v]) => `  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n')}\n`;
}

const withNewline = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);

function adapterSummary(a: Adapter) {
  const c = a.config;
  const scales = [...new Set(a.modules.map((m) => m.scale))];
  return {
    dir: a.dir,
    kind: 'PEFT LoRA adapter',
    baseModel: c.baseModelNameOrPath,
    r: c.r,
    loraAlpha: c.loraAlpha,
    useRslora: c.useRslora,
    scales,
    targetModules: c.targetModules,
    modules: a.modules.length,
    parameters: a.modules.reduce((n, m) => n + m.aShape[0]! * m.aShape[1]! + m.bShape[0]! * m.bShape[1]!, 0),
    rankPattern: c.rankPattern,
    alphaPattern: c.alphaPattern,
    modulesToSave: c.modulesToSave,
  };
}

function formatAdapter(s: ReturnType<typeof adapterSummary>): string {
  return `${Object.entries(s)
    .map(([k, v]) => `${k.padEnd(14)}${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join('\n')}\n`;
}
