// Splitting streamed text into lines. A line that spans many chunks is kept as a list of pieces and joined once
// when it ends: appending each chunk to one string and searching it again for a newline would copy and scan a
// long line once per chunk (quadratic: a single 100 MB line would take minutes).

export interface TextLine {
  /** The line without its `\n` (a `\r` before it is kept: callers decide). */
  text: string;
  /** False for a last line that has no newline. */
  terminated: boolean;
}

/**
 * The lines of a stream of text chunks: every `\n`-terminated line, then the rest after the last newline when
 * it is not empty. With `stripBom`, a byte order mark at the very start is dropped.
 */
export async function* splitLines(
  chunks: AsyncIterable<string>,
  options: { stripBom?: boolean } = {},
): AsyncGenerator<TextLine> {
  let pending: string[] = [];
  let first = options.stripBom === true;
  for await (const raw of chunks) {
    let chunk = raw;
    if (first && chunk !== '') {
      chunk = chunk.replace(/^\uFEFF/, '');
      first = false;
    }
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl >= 0) {
      let text = chunk.slice(start, nl);
      if (pending.length > 0) {
        pending.push(text);
        text = pending.join('');
        pending = [];
      }
      yield { text, terminated: true };
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) pending.push(start === 0 ? chunk : chunk.slice(start));
  }
  const rest = pending.join('');
  if (rest !== '') yield { text: rest, terminated: false };
}

/** `text` without one trailing `\r`. */
export function dropCr(text: string): string {
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}
