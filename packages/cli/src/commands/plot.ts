import path from 'node:path';
import {
  FIGURE_DESCRIPTIONS,
  FIGURE_KINDS,
  type FigureKind,
  type FigureOptions,
  figure,
  fontCoverage,
  formatTable,
  loadRuns,
  PlotError,
  reportTables,
  type TableFormat,
  writeFileAtomic,
  writeReport,
} from '@polyglot/plots';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { Io } from '../io.js';

const FORMATS: readonly TableFormat[] = ['csv', 'md', 'latex'];

/** `--format csv,md` or repeated `--format`: a list of table formats. */
function formatsArg(v: string, prev: TableFormat[] | undefined): TableFormat[] {
  const list = v.split(',').map((s) => s.trim().toLowerCase());
  for (const f of list) {
    if (!FORMATS.includes(f as TableFormat)) {
      throw new InvalidArgumentError(
        `unknown table format "${f}"; use ${FORMATS.join(', ')} (comma-separated for several)`,
      );
    }
  }
  return [...new Set([...(prev ?? []), ...(list as TableFormat[])])];
}

const listArg = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function numArg(flag: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(
        `${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      );
    }
    return n;
  };
}

interface CommonCli {
  runs: string;
  langLabels?: 'code' | 'name' | 'autonym';
  spread?: 'minmax' | 'std' | 'none';
  metric?: string;
  scale?: number;
  missingGlyphs?: 'error' | 'warn';
  font?: string[];
  fontDir?: string[];
}

function addCommon(cmd: Command, render: boolean): Command {
  cmd
    .requiredOption(
      '--runs <dir>',
      'the runs folder: <model>/… .eval, judge outputs, results.json, train-log.jsonl, run.json',
    )
    .addOption(
      new Option(
        '--lang-labels <how>',
        'label languages by code (de), English name or autonym (Deutsch)',
      ).choices(['code', 'name', 'autonym']),
    )
    .addOption(
      new Option('--spread <how>', 'error bars over seeds: min–max (default), ± one std, or none').choices([
        'minmax',
        'std',
        'none',
      ]),
    )
    .option(
      '--metric <name>',
      'fidelity: lang_match (default) or tgt_lang; tasks: the metric (acc, containment, f1, …)',
    );
  if (render) {
    cmd
      .option('--scale <n>', 'PNG pixels per SVG pixel', numArg('--scale', 0.25, 10), 2)
      .addOption(
        new Option(
          '--missing-glyphs <what>',
          'a label no font can draw: error (default) or warn and draw it anyway',
        )
          .choices(['error', 'warn'])
          .default('error'),
      )
      .option('--font <file...>', 'font files to use first (TTF/OTF/TTC)')
      .option('--font-dir <dir...>', 'folders of fonts to search instead of the system font folders');
  }
  return cmd;
}

function fontOptions(o: CommonCli) {
  return {
    ...(o.font ? { fonts: o.font } : {}),
    ...(o.fontDir ? { fontDirs: o.fontDir } : {}),
  };
}

function warnAll(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.stderr(`polyglot: warning: ${w}\n`);
}

async function load(io: Io, dir: string) {
  const runs = await loadRuns(dir);
  warnAll(io, runs.warnings);
  return runs;
}

export function registerPlot(program: Command, io: Io): void {
  const plot = program.command('plot').description('Figures and experiment reports (@polyglot/plots)');

  addCommon(
    plot
      .command('report')
      .description(
        'Write the report of a runs folder: index.html (self-contained), report.md, figures/*.png|svg|vl.json and tables/*',
      )
      .requiredOption('--out <dir>', 'folder to write the report into (created)')
      .option(
        '--format <formats>',
        'table files under tables/: csv, md, latex (comma-separated; default csv)',
        formatsArg,
      )
      .option('--title <text>', 'report title (default: run.json "title", else the folder name)'),
    true,
  ).action(async (o: CommonCli & { out: string; format?: TableFormat[]; title?: string }) => {
    if (o.metric && o.metric !== 'lang_match' && o.metric !== 'tgt_lang') {
      throw new UsageError(`plot report: --metric must be lang_match or tgt_lang, got "${o.metric}"`);
    }
    const runs = await load(io, o.runs);
    const r = await writeReport(runs, {
      out: o.out,
      title: o.title,
      formats: o.format ?? ['csv'],
      scale: o.scale,
      missingGlyphs: o.missingGlyphs,
      langLabels: o.langLabels,
      spread: o.spread,
      metric: o.metric as 'lang_match' | 'tgt_lang' | undefined,
      ...fontOptions(o),
    });
    warnAll(
      io,
      r.warnings.filter((w) => !runs.warnings.includes(w)),
    );
    for (const f of r.figures) {
      io.stdout(f.ok ? `${f.kind}: ${path.join(r.out, f.png!)}\n` : `${f.kind}: not drawn: ${f.message}\n`);
    }
    io.stdout(`report: ${r.html}\nmarkdown: ${r.markdown}\n`);
  });

  addCommon(
    plot
      .command('figure')
      .description(`Render one figure to SVG, PNG and its Vega-Lite spec (${FIGURE_KINDS.join(', ')})`)
      .argument('<kind>', FIGURE_KINDS.map((k) => `${k}: ${FIGURE_DESCRIPTIONS[k]}`).join('; '))
      .requiredOption(
        '--out <path>',
        'PATH.svg, PATH.png or PATH.json writes that file; any other PATH writes PATH.svg, PATH.png and PATH.vl.json',
      )
      .option('--models <list>', 'models to show, in this order (comma-separated)', listArg)
      .option('--langs <list>', 'languages to show, in this order (comma-separated)', listArg)
      .option('--task <family>', 'task-heatmap: the task family (xcsqa, xquad, …)')
      .option('--title <text>', 'figure title')
      .option('--width <px>', 'plot width of one panel', numArg('--width', 20, 5000))
      .option('--height <px>', 'plot height of one panel', numArg('--height', 20, 5000)),
    true,
  ).action(
    async (
      kind: string,
      o: CommonCli & {
        out: string;
        models?: string[];
        langs?: string[];
        task?: string;
        title?: string;
        width?: number;
        height?: number;
      },
    ) => {
      if (!FIGURE_KINDS.includes(kind as FigureKind)) {
        throw new UsageError(`plot figure: unknown figure "${kind}"; use one of ${FIGURE_KINDS.join(', ')}`);
      }
      const runs = await load(io, o.runs);
      const options: FigureOptions = {
        title: o.title,
        metric: o.metric,
        langs: o.langs,
        models: o.models,
        langLabels: o.langLabels,
        spread: o.spread,
        task: o.task,
        width: o.width,
        height: o.height,
        scale: o.scale,
        missingGlyphs: o.missingGlyphs,
        ...fontOptions(o),
      };
      const ext = path.extname(o.out).toLowerCase();
      const f = await figure(kind as FigureKind, runs, {
        ...options,
        png: ext !== '.svg' && ext !== '.json',
      });
      warnAll(io, f.warnings);
      const written: string[] = [];
      const put = async (file: string, data: string | Uint8Array) => {
        await writeFileAtomic(file, data);
        written.push(file);
      };
      const spec = `${JSON.stringify(f.spec, null, 2)}\n`;
      if (ext === '.svg') await put(o.out, f.svg);
      else if (ext === '.png') await put(o.out, f.png!);
      else if (ext === '.json') await put(o.out, spec);
      else {
        await put(`${o.out}.svg`, f.svg);
        await put(`${o.out}.png`, f.png!);
        await put(`${o.out}.vl.json`, spec);
      }
      for (const w of written) io.stdout(`${w}\n`);
    },
  );

  addCommon(
    plot
      .command('table')
      .description('Print the numbers behind the figures as CSV, Markdown or LaTeX tables')
      .argument(
        '[name]',
        'one table (fidelity, fidelity-by-mix, helpfulness, helpfulness-by-mix, xcsqa, xquad, xnli, training, other-tasks); default all',
      )
      .addOption(new Option('--format <format>', 'table format').choices(FORMATS).default('md'))
      .option('--digits <n>', 'decimals', numArg('--digits', 0, 20)),
    false,
  ).action(async (name: string | undefined, o: CommonCli & { format: TableFormat; digits?: number }) => {
    if (o.metric && o.metric !== 'lang_match' && o.metric !== 'tgt_lang') {
      throw new UsageError(`plot table: --metric must be lang_match or tgt_lang, got "${o.metric}"`);
    }
    const runs = await load(io, o.runs);
    const { tables, warnings } = reportTables(runs, {
      langLabels: o.langLabels,
      spread: o.spread,
      metric: o.metric as 'lang_match' | 'tgt_lang' | undefined,
    });
    warnAll(io, warnings);
    const chosen = name ? tables.filter((t) => t.name === name) : tables;
    if (name && chosen.length === 0) {
      throw new PlotError(
        'PLOT_NO_DATA',
        `no table "${name}" for ${o.runs}; there are: ${tables.map((t) => t.name).join(', ') || 'none'}`,
      );
    }
    const opts = { format: o.format, ...(o.digits === undefined ? {} : { digits: o.digits }) };
    const texts = chosen.map((t) => {
      // the caller's digits replace the tables' own
      const columns =
        o.digits === undefined ? t.columns : t.columns.map((c) => ({ ...c, digits: undefined }));
      const body = formatTable(t.rows, columns, opts);
      if (chosen.length === 1) return body;
      if (o.format === 'md') return `**${t.title}**\n\n${body}`;
      if (o.format === 'latex') return `% ${t.title}\n${body}`;
      return `# ${t.title}\r\n${body}`;
    });
    io.stdout(texts.join(o.format === 'csv' ? '\r\n' : '\n'));
  });

  plot
    .command('fonts')
    .description(
      'Show which font draws each script of the figures (Latin, Greek, Cyrillic, Devanagari, Hangul, Han, Kana)',
    )
    .option('--font <file...>', 'font files to use first')
    .option('--font-dir <dir...>', 'folders of fonts to search instead of the system font folders')
    .action((o: { font?: string[]; fontDir?: string[] }) => {
      const cov = fontCoverage(fontOptions(o as CommonCli));
      const width = Math.max(...cov.map((c) => c.script.length));
      for (const c of cov) {
        io.stdout(
          `${c.script.padEnd(width)}  ${c.sample}  ${c.family ? `${c.family}  ${c.file}` : 'MISSING'}\n`,
        );
      }
      const missing = cov.filter((c) => !c.family).map((c) => c.script);
      if (missing.length) {
        throw new PlotError(
          'PLOT_MISSING_GLYPHS',
          `no font for ${missing.join(', ')}; install fonts that cover them (Debian/Ubuntu: apt-get install fonts-noto-core fonts-noto-cjk) or pass --font/--font-dir`,
        );
      }
    });
}
