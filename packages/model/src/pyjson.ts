/**
 * JSON text as Python writes it, for files that the Python ecosystem writes and that we must reproduce byte for
 * byte: `json.dumps(value, indent=2, sort_keys=True)` (ensure_ascii, `", "`/`": "` separators, Python float repr).
 */

/** Compare strings by Unicode code points (Python's str order, and UTF-8 byte order as Rust compares strings). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (an astral code point) sorts after every BMP code unit above the surrogate range.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (x >= 0xe000 || y >= 0xe000)) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16 on. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${digits[0]}${frac}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1) || '0';
  return `${sign}${int}.${frac}`;
}

/** A JSON string literal with Python's default `ensure_ascii=True` escaping. */
export function pythonJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

export interface PythonJsonOptions {
  /** Keys (at any depth) whose numbers Python holds as floats, so that 0 prints as `0.0`. */
  floatKeys?: ReadonlySet<string>;
}

/** `json.dumps(value, indent=2, sort_keys=True)` as Python prints it (no trailing newline). */
export function pythonJsonDumps(value: unknown, options: PythonJsonOptions = {}): string {
  const floatKeys = options.floatKeys ?? new Set<string>();
  const dump = (v: unknown, indent: string, asFloat: boolean): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') return asFloat || !Number.isInteger(v) ? pythonFloatRepr(v) : String(v);
    if (typeof v === 'string') return pythonJsonString(v);
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[\n${v.map((x) => inner + dump(x, inner, asFloat)).join(',\n')}\n${indent}]`;
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v).sort(compareCodePoints);
      if (keys.length === 0) return '{}';
      const items = keys.map(
        (k) =>
          `${inner}${pythonJsonString(k)}: ${dump((v as Record<string, unknown>)[k], inner, floatKeys.has(k))}`,
      );
      return `{\n${items.join(',\n')}\n${indent}}`;
    }
    throw new TypeError(`cannot write ${typeof v} as JSON`);
  };
  return dump(value, '', false);
}
