export { PlotError } from './errors.js';
export { type Figure, type FigureOptions, figure } from './figure.js';
export {
  describeChars,
  type FontFace,
  type FontOptions,
  FontSet,
  type FontUse,
  fontCoverage,
  listFontFiles,
  PREFERRED_FONT_FILES,
  readFontFaces,
  resolveFonts,
  SCRIPT_SAMPLES,
  type ScriptCoverage,
  systemFontDirs,
} from './fonts.js';
export { writeFileAtomic } from './fsutil.js';
export { isLangCode, LANGUAGES, type LangLabels, langLabel, sortLangs } from './langs.js';
export { langOfTestset, languagesInMix, parseRunFileName, type RunFileName } from './names.js';
export { type Aggregate, type Pivoted, type PivotOptions, pivot } from './pivot.js';
export {
  type EvalCsv,
  type JudgeFile,
  parseCsv,
  type ResultsJson,
  readEvalCsv,
  readJudgeJsonl,
  readResultsJson,
  readTrainLog,
  type TaskMetric,
  type TrainLog,
  type TrainLogPoint,
} from './readers.js';
export { type MissingGlyphs, type Rendered, type RenderOptions, renderSpec, svgTexts } from './render.js';
export {
  type ReportFigure,
  type ReportOptions,
  type ReportResult,
  reportTables,
  writeReport,
} from './report.js';
export {
  classifyRunFile,
  type FidelityRow,
  type FigureData,
  type JudgeRow,
  type LoadRunsOptions,
  loadRuns,
  type ModelInfo,
  modelInfo,
  parseTaskName,
  type RunFile,
  type Runs,
  sortModels,
  type TaskRow,
  type TrainPoint,
} from './runs.js';
export {
  baseConfig,
  FIGURE_DESCRIPTIONS,
  FIGURE_KINDS,
  type FigureKind,
  type FigureSpec,
  type FigureTable,
  figureSpec,
  type SpecOptions,
  type Spread,
} from './specs.js';
export {
  type Cell,
  type Column,
  formatTable,
  type Row,
  type TableFormat,
  type TableOptions,
} from './table.js';
