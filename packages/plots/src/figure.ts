// figure(kind, data, options) → { spec, svg, png }: the paper's figures, rendered.

import type { FontUse } from './fonts.js';
import { type RenderOptions, renderSpec } from './render.js';
import type { FigureData } from './runs.js';
import { type FigureKind, type FigureTable, figureSpec, type SpecOptions } from './specs.js';

export interface FigureOptions extends SpecOptions, RenderOptions {}

export interface Figure {
  kind: FigureKind;
  /** The Vega-Lite spec (inline data, fonts filled in): edit it and render it again with renderSpec. */
  spec: Record<string, any>;
  svg: string;
  /** PNG bytes (null with `png: false`). */
  png: Buffer | null;
  /** SVG size in pixels; the PNG is `scale` (default 2) times larger. */
  width: number;
  height: number;
  /** The numbers the figure shows, as tables (for formatTable). */
  tables: FigureTable[];
  caption: string;
  /** Which font draws which characters of the figure. */
  fonts: FontUse[];
  warnings: string[];
}

/**
 * Draws one of the paper's figures from result rows (or loadRuns()'s result) and renders it to SVG and PNG.
 * Throws `PlotError` `PLOT_NO_DATA` when there is nothing to draw, `PLOT_BAD_DATA` for inconsistent rows,
 * `PLOT_BAD_OPTION` for bad options and `PLOT_MISSING_GLYPHS` when no font has a label's characters.
 */
export async function figure(
  kind: FigureKind,
  data: FigureData,
  options: FigureOptions = {},
): Promise<Figure> {
  const built = figureSpec(kind, data, options);
  const r = await renderSpec(built.spec, options);
  return {
    kind,
    spec: r.spec,
    svg: r.svg,
    png: r.png,
    width: r.width,
    height: r.height,
    tables: built.tables,
    caption: built.caption,
    fonts: r.fonts,
    warnings: [...built.warnings, ...r.warnings],
  };
}
