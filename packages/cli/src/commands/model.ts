import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  ADAPTER_CONFIG_FILE,
  type Adapter,
  exportGguf,
  exportLoraGguf,
  formatInspect,
  GGUF_DTYPES,
  type GgufDtype,
  inspectModel,
  type Progress,
  readAdapter,
  readLlamaConfig,
  Tokenizer,
} from '@polyglot/model';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';
import { progressFor } from './infer.js';

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

  model
    .command('export')
    .description(
      'Export a Hugging Face Llama checkpoint (e.g. after `polyglot merge`) to GGUF for llama.cpp: f32, f16 or q8_0 ' +
        'weights, the tokenizer, and the source tokenizer files; or a PEFT adapter as a llama.cpp LoRA GGUF (--adapter)',
    )
    .requiredOption('--to <format>', 'output format: gguf')
    .requiredOption(
      '--model <dir>',
      'Hugging Face model directory (config.json, safetensors, tokenizer.json)',
    )
    .requiredOption('--out <file>', 'the GGUF file to write (atomically)')
    .option('--dtype <dtype>', `weight type: ${GGUF_DTYPES.join(', ')}`, 'f16')
    .option('--tokenizer <dir>', 'directory of the tokenizer files (default: the model directory)')
    .option('--merge-adapter <dir>', 'merge this PEFT LoRA adapter into the weights while exporting')
    .option(
      '--adapter <dir>',
      "export this PEFT LoRA adapter alone, for llama.cpp's --lora (--model gives its base)",
    )
    .option('--quiet', 'no progress')
    .action(
      async (opts: {
        to: string;
        model: string;
        out: string;
        dtype: string;
        tokenizer?: string;
        mergeAdapter?: string;
        adapter?: string;
        quiet?: boolean;
      }) => {
        if (opts.to !== 'gguf') throw new UsageError(`--to must be gguf, got ${JSON.stringify(opts.to)}`);
        if (!(GGUF_DTYPES as readonly string[]).includes(opts.dtype)) {
          throw new UsageError(
            `--dtype must be one of ${GGUF_DTYPES.join(', ')}, got ${JSON.stringify(opts.dtype)}`,
          );
        }
        if (opts.adapter !== undefined) {
          if (opts.mergeAdapter !== undefined)
            throw new UsageError('give --adapter or --merge-adapter, not both');
          if (opts.dtype === 'q8_0') throw new UsageError('an adapter is exported as f32 or f16 (--dtype)');
          const r = await exportLoraGguf(opts.adapter, await readLlamaConfig(opts.model), opts.out, {
            dtype: opts.dtype as 'f32' | 'f16',
          });
          io.stdout(
            `${JSON.stringify({ file: r.file, bytes: r.bytes, adapter: opts.adapter, alpha: r.alpha, modules: r.modules })}\n`,
          );
          return;
        }
        let progress: Progress | null = null;
        const r = await exportGguf(opts.model, opts.out, {
          dtype: opts.dtype as GgufDtype,
          tokenizer: opts.tokenizer,
          mergeAdapter: opts.mergeAdapter,
          onTensor: opts.quiet
            ? undefined
            : (_i, total) => {
                progress ??= progressFor(io, total, 'tensors');
                progress.tick();
              },
        });
        (progress as Progress | null)?.done();
        const types: Record<string, number> = {};
        for (const t of Object.values(r.tensorTypes)) types[t] = (types[t] ?? 0) + 1;
        io.stdout(
          `${JSON.stringify({ file: r.file, bytes: r.bytes, dtype: r.dtype, tokenizer: r.tokenizerModel, tensors: types })}\n`,
        );
      },
    );
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
