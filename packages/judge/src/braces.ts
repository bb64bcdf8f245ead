// JSON objects inside a judge's prose: the balanced `{…}` spans of a text, found without quadratic blow-up.

/**
 * Every balanced `{…}` span of the text (string-aware), outer spans first. Each `{` starts a scan to its match,
 * so a reply of many unmatched `{` would take quadratic time: the scans share a budget of characters (far more
 * than any real reply needs), and the spans past it are not tried (the reply is then read as text).
 */
export function* braceSpans(text: string): Generator<string> {
  let budget = 64 * text.length + 4_000_000;
  for (let start = text.indexOf('{'); start >= 0; start = text.indexOf('{', start + 1)) {
    let depth = 0;
    let inString = false;
    let escaped = false;
    for (let i = start; i < text.length; i++) {
      if (--budget < 0) return;
      const c = text[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        yield text.slice(start, i + 1);
        break;
      }
    }
  }
}
