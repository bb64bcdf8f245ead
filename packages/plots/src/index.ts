export { PlotError } from './errors.js';
export { type Aggregate, type Pivoted, type PivotOptions, pivot } from './pivot.js';
export {
  type Cell,
  type Column,
  formatTable,
  type Row,
  type TableFormat,
  type TableOptions,
} from './table.js';
