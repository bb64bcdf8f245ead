// 09 — The experiment's report: figures and tables from a runs folder (@polyglot/plots).
// Reads everything examples 02–08 wrote under WORK/runs (run.json with the models' languages, training logs,
// the .eval fidelity files, judge outputs, results.json of the tasks) and writes the paper's figures — fidelity per
// language and mix, fidelity against the number of tuning languages, X-CSQA/XQuAD heat maps, XNLI bars, loss
// curves; helpfulness where judge scores exist — with their tables, a self-contained index.html and report.md.
//
// Embedded defaults (the numbers of a model this small are noise; the point is the pipeline and the report):
//   node --import tsx examples/09-plots.ts
// Real scale (any folder in the same layout, e.g. the runs of the paper's pipeline or of `polyglot reproduce`):
//   node --import tsx examples/09-plots.ts --runs runs/llama-2-7b --out report/llama-2-7b --format csv,md,latex
//
// Flags: --runs DIR (default WORK/runs); --out DIR (default WORK/report); --format csv,md,latex (default csv,md);
//   --lang-labels code|name|autonym; --metric lang_match|tgt_lang; --title TEXT; --work DIR.
// Writes: WORK/report/{index.html, report.md, figures/<kind>.{png,svg,vl.json}, tables/<name>.{csv,md,…}}.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadRuns, type TableFormat, writeReport } from '@polyglot/plots';
import { ExampleError, flags, layout, list, main, show, workDir } from './lib/common.js';

const f = flags(import.meta.url, {
  runs: { type: 'string' },
  out: { type: 'string' },
  format: { type: 'string' },
  'lang-labels': { type: 'string' },
  metric: { type: 'string' },
  title: { type: 'string' },
});

main(import.meta.url, async () => {
  const work = await workDir(f.work);
  const dirs = layout(work);
  const runsDir = path.resolve(f.runs ?? dirs.runs);
  const out = path.resolve(f.out ?? dirs.report);
  if (!existsSync(runsDir))
    throw new ExampleError(`${runsDir}: no runs folder; run examples 02–08 first (or give --runs)`);
  const formats = list(f.format, ['csv', 'md']) as TableFormat[];
  const langLabels = (f['lang-labels'] ?? 'code') as 'code' | 'name' | 'autonym';
  if (!['code', 'name', 'autonym'].includes(langLabels)) {
    throw new ExampleError(`--lang-labels ${langLabels}: expected code, name or autonym`);
  }
  const metric = f.metric as 'lang_match' | 'tgt_lang' | undefined;
  if (metric !== undefined && !['lang_match', 'tgt_lang'].includes(metric)) {
    throw new ExampleError(`--metric ${metric}: expected lang_match or tgt_lang`);
  }

  const runs = await loadRuns(runsDir);
  console.log(
    `${show(runsDir)}: ${runs.files.length} files read — ${runs.fidelity.length} fidelity rows, ` +
      `${runs.helpfulness.length} judge rows, ${runs.tasks.length} task results, ${runs.training.length} training log points`,
  );
  const report = await writeReport(runs, {
    out,
    formats,
    langLabels,
    // Only when asked: writeReport applies `metric` to every figure (the task heat maps have no lang_match).
    ...(metric ? { metric } : {}),
    ...(f.title ? { title: f.title } : {}),
  });
  for (const fig of report.figures) {
    console.log(
      `  ${fig.ok ? 'drawn  ' : 'skipped'} ${fig.kind.padEnd(20)} ${fig.ok ? '' : (fig.message ?? '')}`,
    );
  }
  for (const w of report.warnings.slice(0, 5)) console.log(`  warning: ${w}`);
  if (report.warnings.length > 5)
    console.log(`  … ${report.warnings.length - 5} more warnings (all in the report's notes)`);
  console.log(
    `report: ${show(report.html)} and ${show(report.markdown)} (${report.files.length} files in ${show(out)})`,
  );
});
