// OpenAssistant (oasst1) message trees — `2023-04-12_oasst_ready.trees.jsonl(.gz)`: one tree per line,
// `{message_tree_id, prompt: {message_id, role: "prompter", text, lang, replies: [{role: "assistant", rank,
// replies: […]}, …]}}` — and the Guanaco way of reading them: follow the best-ranked reply at every turn.
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { DataError } from './errors.js';
import { formatGuanaco, type Message } from './guanaco.js';
import { splitLines } from './lines.js';

/** A node of an oasst1 message tree (the fields used here; others are kept as they are). */
export interface OasstNode {
  message_id?: string;
  role: 'prompter' | 'assistant';
  text: string;
  lang?: string;
  /** 0 = the best-rated sibling; null or absent where unranked. */
  rank?: number | null;
  deleted?: boolean;
  replies?: OasstNode[];
  [key: string]: unknown;
}

export interface OasstTree {
  message_tree_id?: string;
  prompt: OasstNode;
  [key: string]: unknown;
}

/** A conversation taken from a tree. */
export interface OasstConversation {
  treeId: string | null;
  lang: string | null;
  messages: Message[];
  /** The conversation as Guanaco `text`. */
  text: string;
}

function better(a: OasstNode, b: OasstNode): boolean {
  const ra = typeof a.rank === 'number' ? a.rank : Number.POSITIVE_INFINITY;
  const rb = typeof b.rank === 'number' ? b.rank : Number.POSITIVE_INFINITY;
  return ra < rb;
}

function guanacoText(messages: Message[], where: string): string {
  try {
    return formatGuanaco(messages);
  } catch (e) {
    throw new DataError('bad-oasst', `${where}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The best path through a tree: from the prompt, repeatedly the reply with the lowest `rank` (the first
 * among equals; deleted replies are skipped), as Guanaco's "best replies" conversations were built. A path
 * that ends on a user turn loses that turn, so every conversation ends with the assistant; a tree without
 * an assistant reply gives null.
 */
export function oasstBestPath(tree: OasstTree, where = 'tree'): OasstConversation | null {
  if (typeof tree?.prompt !== 'object' || tree.prompt === null) {
    throw new DataError('bad-oasst', `${where}: no "prompt" node (expected an oasst1 message tree)`);
  }
  const messages: Message[] = [];
  let node: OasstNode | undefined = tree.prompt;
  while (node) {
    if (typeof node !== 'object' || Array.isArray(node)) {
      throw new DataError('bad-oasst', `${where}: a message node is not an object`);
    }
    if (node.role !== 'prompter' && node.role !== 'assistant') {
      throw new DataError(
        'bad-oasst',
        `${where}: a node has role ${JSON.stringify(node.role)}, expected prompter or assistant`,
      );
    }
    if (typeof node.text !== 'string') throw new DataError('bad-oasst', `${where}: a node has no text`);
    messages.push({ role: node.role === 'prompter' ? 'user' : 'assistant', content: node.text });
    const replies: unknown = node.replies ?? [];
    if (!Array.isArray(replies)) {
      throw new DataError(
        'bad-oasst',
        `${where}: a node's "replies" is ${typeof replies}, expected a list of message nodes`,
      );
    }
    let next: OasstNode | undefined;
    for (const r of replies as unknown[]) {
      if (typeof r !== 'object' || r === null || Array.isArray(r)) {
        throw new DataError(
          'bad-oasst',
          `${where}: a reply is ${r === null ? 'null' : typeof r}, expected a message node`,
        );
      }
      const reply = r as OasstNode;
      if (reply.deleted) continue;
      if (!next || better(reply, next)) next = reply;
    }
    node = next;
  }
  if (messages.at(-1)?.role === 'user') messages.pop();
  if (messages.length < 2) return null;
  return {
    treeId: typeof tree.message_tree_id === 'string' ? tree.message_tree_id : null,
    lang: typeof tree.prompt.lang === 'string' ? tree.prompt.lang : null,
    messages,
    text: guanacoText(messages, where),
  };
}

/**
 * Reads an oasst1 trees file (JSON Lines, gzip-compressed where the name ends in `.gz`) and yields the best
 * path of every tree that has an assistant reply. Errors name file:line.
 */
export async function* readOasstTrees(file: string): AsyncGenerator<OasstConversation & { where: string }> {
  const source = createReadStream(file);
  const stream = /\.gz$/i.test(file) ? source.pipe(createGunzip()) : source;
  stream.setEncoding('utf8');
  let buffer = '';
  let line = 0;
  const handle = (text: string) => {
    line++;
    if (text.trim() === '') return null;
    let tree: OasstTree;
    try {
      tree = JSON.parse(text);
    } catch (e) {
      throw new DataError('bad-json', `${file}:${line}: invalid JSON (${(e as Error).message})`);
    }
    const c = oasstBestPath(tree, `${file}:${line}`);
    return c ? { ...c, where: `${file}:${line}` } : null;
  };
  try {
    for await (const { text, terminated } of splitLines(stream as AsyncIterable<string>)) {
      if (!terminated) {
        buffer = text;
        break;
      }
      const c = handle(text);
      if (c) yield c;
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError('cannot-read', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  } finally {
    source.destroy();
  }
  const c = handle(buffer);
  if (c) yield c;
}
