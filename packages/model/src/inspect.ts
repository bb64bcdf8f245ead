/** A summary of a model directory: architecture, sizes, parameters, dtypes, shards and the other files present. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Checkpoint, validateLlamaCheckpoint } from './checkpoint.js';
import { isPolyglotError } from './errors.js';

export interface ModelReport {
  dir: string;
  /** architectures[0] of config.json (null when it names none). */
  architecture: string | null;
  modelType: string;
  config: {
    hidden: number;
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    intermediate: number;
    vocab: number;
    maxPositions: number;
    ropeTheta: number;
    ropeScaling: string | null;
    tied: boolean;
    dtype: string | null;
  };
  parameterCount: number;
  /** dtype -> number of tensors. */
  dtypes: Record<string, number>;
  shards: { file: string; tensors: number; bytes: number }[];
  totalBytes: number;
  /** The directory's other files (config.json, tokenizer.json, ...), sorted. */
  files: string[];
  /** null when the weights match the config (see validateLlamaCheckpoint), else what is wrong. */
  problem: string | null;
}

export async function inspectModel(dir: string): Promise<ModelReport> {
  const ckpt = await Checkpoint.open(dir);
  try {
    const c = ckpt.config;
    const shards = await Promise.all(
      ckpt.shards.map(async (file) => ({
        file,
        tensors: ckpt.tensorNames().filter((n) => ckpt.tensorInfo(n).shard === file).length,
        bytes: (await fsp.stat(path.join(dir, file))).size,
      })),
    );
    const entries = await fsp.readdir(dir, { withFileTypes: true });
    const files = entries
      .filter((e) => e.isFile() && !ckpt.shards.includes(e.name))
      .map((e) => e.name)
      .sort();
    let problem: string | null = null;
    try {
      validateLlamaCheckpoint(ckpt);
    } catch (e) {
      if (!isPolyglotError(e)) throw e;
      problem = e.message;
    }
    return {
      dir,
      architecture: c.architectures[0] ?? null,
      modelType: c.modelType,
      config: {
        hidden: c.hiddenSize,
        layers: c.numHiddenLayers,
        heads: c.numAttentionHeads,
        kvHeads: c.numKeyValueHeads,
        headDim: c.headDim,
        intermediate: c.intermediateSize,
        vocab: c.vocabSize,
        maxPositions: c.maxPositionEmbeddings,
        ropeTheta: c.ropeTheta,
        ropeScaling: c.ropeScaling ? c.ropeScaling.type : null,
        tied: c.tieWordEmbeddings,
        dtype: c.dtype,
      },
      parameterCount: ckpt.parameterCount(),
      dtypes: ckpt.dtypes(),
      shards,
      totalBytes: shards.reduce((a, s) => a + s.bytes, 0),
      files,
      problem,
    };
  } finally {
    await ckpt.close();
  }
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

function formatCount(n: number): string {
  const short =
    n >= 1e9
      ? `${(n / 1e9).toFixed(2)}B`
      : n >= 1e6
        ? `${(n / 1e6).toFixed(2)}M`
        : `${(n / 1e3).toFixed(1)}K`;
  return `${n.toLocaleString('en-US')} (${short})`;
}

/** The report as aligned, human-readable lines. */
export function formatInspect(report: ModelReport): string {
  const c = report.config;
  const rows: [string, string][] = [
    ['architecture', `${report.architecture ?? '(none)'} (model_type ${report.modelType})`],
    ['layers', `${c.layers}, hidden ${c.hidden}, intermediate ${c.intermediate}`],
    ['attention', `${c.heads} heads, ${c.kvHeads} kv heads, head_dim ${c.headDim}`],
    ['vocab', `${c.vocab}, max positions ${c.maxPositions}`],
    ['rope', `theta ${c.ropeTheta}${c.ropeScaling ? `, scaling ${c.ropeScaling}` : ''}`],
    ['embeddings', c.tied ? 'tied (lm_head = embed_tokens)' : 'untied'],
    ['dtype', c.dtype ?? '(not in config.json)'],
    ['parameters', formatCount(report.parameterCount)],
    [
      'stored as',
      Object.entries(report.dtypes)
        .map(([d, n]) => `${d} × ${n}`)
        .join(', '),
    ],
    ['weights', `${report.shards.length} file(s), ${formatBytes(report.totalBytes)}`],
    ...report.shards.map((s): [string, string] => [
      '',
      `${s.file}: ${s.tensors} tensors, ${formatBytes(s.bytes)}`,
    ]),
    ['files', report.files.join(', ') || '(none)'],
    ['check', report.problem ?? 'weights match config.json'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return [report.dir, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}
