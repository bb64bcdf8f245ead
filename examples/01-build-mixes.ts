// 01 — Build the paper's tuning mixes (@polyglot/data, @polyglot/lid).
// Mono (English only) and Multi-2 … Multi-6 (English plus the first 1–5 of es, ru, de, zh, fr), every mix the same
// size: `--per-lang` conversations of each added language, English filling up to `--total`. Optionally tags the
// pool's languages first with a fastText LID model (the paper: OpenLID, tags below 0.8 confidence left out).
//
// Embedded defaults (the demo conversations of data/demo/chat.jsonl, which carry their `lang`; 40 per mix):
//   node --import tsx examples/01-build-mixes.ts
// Real scale (the paper: Guanaco's train split tagged with OpenLID, 3,200 conversations, 200 per added language):
//   node --import tsx examples/01-build-mixes.ts --guanaco --tag openlid --total 3200 --per-lang 200
//   (or --input FILE.jsonl for any pool of {"text": …} records; --tag lid176 needs no download)
//
// Flags: --input FILE (repeatable; default data/demo/chat.jsonl) | --guanaco (download Guanaco's train split);
//   --tag lid176|openlid|glotlid|MODEL.bin; --field text; --mixes mono,multi-2,…,multi-6; --total 40;
//   --per-lang 6; --min-confidence 0.8; --seed 42; --out-dir DIR (default WORK/mixes); --work DIR
//   (default .polyglot-examples/).
// Writes: WORK/mixes/<mix>.jsonl (Guanaco {"text", "lang", …} records) and <mix>.manifest.json (counts, sources,
// sha256); with --tag also WORK/mixes/pool.tagged.jsonl.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { buildMix, getDataset, paperMixNames, readMixSources, tagFile, writeMix } from '@polyglot/data';
import { loadLidModel } from '@polyglot/lid';
import { ExampleError, flags, layout, list, main, num, repoPath, show, workDir } from './lib/common.js';

const f = flags(import.meta.url, {
  input: { type: 'string', multiple: true },
  guanaco: { type: 'boolean' },
  tag: { type: 'string' },
  field: { type: 'string' },
  mixes: { type: 'string' },
  total: { type: 'string' },
  'per-lang': { type: 'string' },
  'min-confidence': { type: 'string' },
  seed: { type: 'string' },
  'out-dir': { type: 'string' },
});

main(import.meta.url, async () => {
  const work = await workDir(f.work);
  const outDir = path.resolve(f['out-dir'] ?? layout(work).mixes);
  const total = num(f.total, 'total', 40);
  const perLanguage = num(f['per-lang'], 'per-lang', 6);
  const seed = num(f.seed, 'seed', 42);
  const minConfidence = num(f['min-confidence'], 'min-confidence', 0.8);
  const mixes = list(f.mixes, paperMixNames());
  await mkdir(outDir, { recursive: true });

  let inputs: string[];
  if (f.guanaco) {
    if (f.input) throw new ExampleError('give --guanaco or --input, not both');
    console.log('downloading Guanaco (train split) into the polyglot cache …');
    const got = await getDataset('guanaco', { splits: ['train'] });
    inputs = got.files.map((x) => x.path);
  } else {
    inputs = (f.input ?? [repoPath('data', 'demo', 'chat.jsonl')]).map((p) => path.resolve(p));
  }

  if (f.tag) {
    if (inputs.length !== 1) throw new ExampleError('--tag tags one input file; give one --input');
    const lid = await loadLidModel(f.tag);
    const tagged = path.join(outDir, 'pool.tagged.jsonl');
    const summary = await tagFile(inputs[0]!, tagged, lid, { field: f.field ?? 'text' });
    console.log(
      `tagged ${summary.records} records of ${show(inputs[0]!)} with ${f.tag} → ${show(tagged)} ` +
        `(${Object.keys(summary.labels).length} labels, ${summary.empty} empty)`,
    );
    inputs = [tagged];
  }

  const { records, sources } = await readMixSources(inputs);
  console.log(`pool: ${records.length} records from ${inputs.map(show).join(', ')}`);
  console.log(`mixes of ${total} records, ${perLanguage} per added language, seed ${seed}:`);
  for (const mix of mixes) {
    const result = buildMix(
      records,
      { kind: 'paper', mix, total, perLanguage },
      { seed, minConfidence, langField: 'lang' },
    );
    const out = path.join(outDir, `${mix}.jsonl`);
    const written = await writeMix(out, result, sources);
    const counts = Object.entries(result.counts)
      .map(([l, n]) => `${l} ${n}`)
      .join(', ');
    console.log(
      `  ${mix.padEnd(8)} ${String(result.records.length).padStart(5)} records (${counts}) → ${show(written.path)}`,
    );
  }
  console.log(`manifests (counts, sources, sha256) next to each mix: ${show(outDir)}/<mix>.manifest.json`);
});
