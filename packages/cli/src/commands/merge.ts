import {
  type AdapterSpec,
  type MergeReport,
  mergeAdapter,
  OUTPUT_DTYPES,
  type OutputDtype,
} from '@polyglot/lora-merge';
import { Progress } from '@polyglot/model';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';

interface MergeFlags {
  base: string;
  adapter: string[];
  out: string;
  dtype: string;
  verify?: boolean;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
}

/** `DIR` or `DIR:WEIGHT` (the weight only when what follows the last colon is a number). */
export function parseAdapterFlag(value: string): AdapterSpec {
  const i = value.lastIndexOf(':');
  if (i > 0) {
    const tail = value.slice(i + 1);
    if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(tail)) {
      const weight = Number(tail);
      if (!Number.isFinite(weight))
        throw new UsageError(`--adapter ${value}: the weight must be a finite number`);
      return { dir: value.slice(0, i), weight };
    }
  }
  if (value === '') throw new UsageError('--adapter needs a PEFT adapter directory');
  return { dir: value };
}

const gb = (n: number) => `${(n / 1e9).toFixed(n < 1e8 ? 3 : 2)} GB`;

function formatReport(r: MergeReport): string {
  const lines: string[] = [];
  const verb = r.dryRun ? 'would merge' : 'merged';
  for (const a of r.adapters) {
    lines.push(
      `adapter ${a.dir}: r ${a.r}, lora_alpha ${a.loraAlpha}${a.useRslora ? ' (rsLoRA)' : ''}` +
        `${a.fanInFanOut ? ', fan_in_fan_out' : ''}, ${a.modules} modules, weight ${a.weight}`,
    );
  }
  if (r.dryRun) {
    lines.push(`tensors that would change (${r.tensorsMerged}):`);
    for (const t of r.merged) {
      const parts = t.contributions.map(
        (c) =>
          `${c.weight === 1 ? '' : `${c.weight} × `}${c.scale}·B·A (r ${c.r}, alpha ${c.alpha}) from ${c.adapter}`,
      );
      lines.push(`  ${t.name} ${t.dtype} [${t.shape.join(', ')}] in ${t.shard}: + ${parts.join(' + ')}`);
    }
    const how = r.tensorsConverted ? `converted to ${r.dtype}` : 'copied byte for byte';
    lines.push(`tensors that would be ${how} (${r.unchanged.length}): ${r.unchanged.join(', ')}`);
  }
  lines.push(
    `${verb} ${r.tensorsMerged} tensors, ${r.tensorsCopied} copied${r.tensorsConverted ? `, ${r.tensorsConverted} converted` : ''}; ` +
      `${r.shards.length} shard(s) + ${r.files.length} files, ${gb(r.bytesWritten)}` +
      `${r.dryRun ? ' would be written' : ` written to ${r.out} in ${r.seconds.toFixed(1)} s (${gb(r.bytesWritten / Math.max(r.seconds, 1e-9))}/s, ${r.kernel} kernel)`}`,
  );
  if (r.dtype) lines.push(`config.json dtype: ${r.dtype}`);
  if (r.verify) {
    lines.push(
      `verified: ${r.verify.merged} merged tensors bit-identical to a recomputation, ` +
        `${r.verify.tensors - r.verify.merged} others identical to the base, in ${r.verify.seconds.toFixed(1)} s`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function registerMerge(program: Command, io: Io): void {
  program
    .command('merge')
    .description(
      'Merge PEFT LoRA adapters into a checkpoint, shard by shard, keeping its dtype (@polyglot/lora-merge)',
    )
    .requiredOption('--base <dir>', 'base model directory (config.json + safetensors, sharded or not)')
    .option(
      '--adapter <dir[:weight]>',
      'PEFT LoRA adapter directory, optionally with a weight (repeatable; deltas are added in order)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .requiredOption('--out <dir>', 'merged model directory to create')
    .option('--dtype <dtype>', `output dtype: ${OUTPUT_DTYPES.join('|')}`, 'keep')
    .option(
      '--verify',
      'check every written tensor against a fresh recomputation before publishing the output',
    )
    .option('--dry-run', 'report which tensors would change and what would be written; write nothing')
    .option('--force', 'replace --out if it exists')
    .option('--json', 'print the report as JSON')
    .action(async (opts: MergeFlags) => {
      if (opts.adapter.length === 0)
        throw new UsageError('polyglot merge needs at least one --adapter <dir>');
      if (!(OUTPUT_DTYPES as readonly string[]).includes(opts.dtype)) {
        throw new UsageError(
          `--dtype must be one of ${OUTPUT_DTYPES.join(', ')}, got ${JSON.stringify(opts.dtype)}`,
        );
      }
      const adapters = opts.adapter.map(parseAdapterFlag);
      const tty = process.stderr.isTTY === true;
      let progress: Progress | null = null;
      let phase = '';
      const report = await mergeAdapter({
        base: opts.base,
        adapters,
        out: opts.out,
        dtype: opts.dtype as OutputDtype,
        verify: Boolean(opts.verify),
        dryRun: Boolean(opts.dryRun),
        force: Boolean(opts.force),
        onProgress: (e) => {
          if (e.phase !== phase) {
            if (tty) progress?.done(); // ends the line; elsewhere the last tick already logged the last JSON line
            phase = e.phase;
            progress = new Progress({
              total: e.shards,
              label: e.phase === 'merge' ? 'merge shards' : 'verify shards',
              stream: { write: (t: string) => io.stderr(t), isTTY: tty },
              logEveryMs: 0, // one line per shard when not on a terminal
            });
          }
          progress!.tick();
        },
      });
      if (tty) (progress as Progress | null)?.done();
      io.stdout(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}
