import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot, sharedPath } from '../../../tools/shared.js';
import { inProcess as polyglot } from './helpers/cli.js';

const jsonLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

const demo = path.join(repoRoot, 'data', 'demo');
const chat = path.join(demo, 'chat.jsonl');

describe('polyglot data', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polyglot-cli-data-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists its subcommands, none of them planned any more', async () => {
    const r = await polyglot('data', '--help');
    expect(r.code).to.equal(0);
    for (const sub of ['get', 'tag', 'mix', 'render', 'stats'])
      expect(r.stdout).to.match(new RegExp(`^\\s+${sub}\\b`, 'm'));
    expect(r.stdout).to.not.include('planned');
  });

  it('get: --list; a download from a local server; offline errors say what to fetch and where', async () => {
    const list = await polyglot('data', 'get', '--list');
    expect(list.code, list.stderr).to.equal(0);
    expect(list.stdout).to.include('guanaco\n');
    expect(list.stdout).to.include('https://github.com/google-deepmind/xquad');
    const body = `${JSON.stringify({ text: '### Human: Hi?### Assistant: Hello.' })}\n`;
    const server = http.createServer((req, res) => {
      if (req.url === '/openassistant_best_replies_eval.jsonl') {
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const cache = path.join(dir, 'cache');
      const r = await polyglot(
        'data',
        'get',
        'guanaco',
        '--split',
        'test',
        '--cache-dir',
        cache,
        '--base-url',
        base,
      );
      expect(r.code, r.stderr).to.equal(0);
      const [f] = jsonLines(r.stdout);
      expect(f).to.include({ dataset: 'guanaco', check: 'recorded', cached: false });
      expect(readFileSync(f.path, 'utf8')).to.equal(body);
      expect(r.stderr).to.include('pinned');
      const again = await polyglot(
        'data',
        'get',
        'guanaco',
        '--split',
        'test',
        '--cache-dir',
        cache,
        '--offline',
      );
      expect(again.code, again.stderr).to.equal(0);
      expect(jsonLines(again.stdout)[0]).to.include({ cached: true });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    const off = await polyglot(
      'data',
      'get',
      'xquad',
      '--lang',
      'de',
      '--cache-dir',
      path.join(dir, 'empty'),
      '--offline',
    );
    expect(off.code).to.equal(1);
    expect(off.stderr).to.match(/^polyglot: error: xquad is not in the cache .* offline mode/);
    expect(off.stderr).to.include('xquad.de.json');
    expect(off.stderr.trim().split('\n')).to.have.length(1);
    const unknown = await polyglot('data', 'get', 'imagenet');
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.include('unknown dataset "imagenet"');
  });

  it('tag: label and confidence with lid.176 and a threshold', async () => {
    const input = path.join(dir, 'prompts.jsonl');
    writeFileSync(
      input,
      ['Wie spät ist es heute Abend?', 'Какая сегодня погода в Москве?', 'ok']
        .map((q) => JSON.stringify({ instruction: q }))
        .join('\n'),
    );
    const out = path.join(dir, 'tagged.jsonl');
    const r = await polyglot(
      'data',
      'tag',
      input,
      '--field',
      'instruction',
      '--threshold',
      '0.6',
      '--output',
      out,
    );
    expect(r.code, r.stderr).to.equal(0);
    const rows = jsonLines(readFileSync(out, 'utf8'));
    expect(rows.slice(0, 2).map((x) => x.lang)).to.deep.equal(['de', 'ru']);
    expect(rows[0].lang_prob).to.be.greaterThan(0.6);
    const missing = await polyglot('data', 'tag', input, '--field', 'text');
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include(`${input}:1`);
    const badT = await polyglot('data', 'tag', input, '--threshold', '1.5');
    expect(badT.code).to.equal(2);
  });

  it("mix: the paper's Mono and Multi-k mixes of the demo data, with manifests; refusals are clear", async () => {
    const out = path.join(dir, 'mixes');
    const r = await polyglot(
      'data',
      'mix',
      chat,
      '--recipe',
      'paper',
      '--total',
      '40',
      '--per-lang',
      '6',
      '--seed',
      '1',
      '--out-dir',
      out,
    );
    expect(r.code, r.stderr).to.equal(0);
    const lines = jsonLines(r.stdout);
    expect(lines.map((l) => l.mix)).to.deep.equal([
      'mono',
      'multi-2',
      'multi-3',
      'multi-4',
      'multi-5',
      'multi-6',
    ]);
    expect(lines[2].counts).to.deep.equal({ en: 28, es: 6, ru: 6 });
    const manifest = JSON.parse(readFileSync(path.join(out, 'multi-3.manifest.json'), 'utf8'));
    expect(manifest).to.deep.include({ seed: 1, total: 40, counts: { en: 28, es: 6, ru: 6 } });
    expect(manifest.options.minConfidence).to.equal(0.8);
    expect(manifest.sources[0].path).to.equal(chat);
    // same seed → same bytes; another seed → other records
    const again = path.join(dir, 'again.jsonl');
    await polyglot(
      'data',
      'mix',
      chat,
      '--mix',
      'multi-3',
      '--total',
      '40',
      '--per-lang',
      '6',
      '--seed',
      '1',
      '--output',
      again,
    );
    expect(readFileSync(again)).to.deep.equal(readFileSync(path.join(out, 'multi-3.jsonl')));
    const other = path.join(dir, 'other.jsonl');
    await polyglot(
      'data',
      'mix',
      chat,
      '--mix',
      'multi-3',
      '--total',
      '40',
      '--per-lang',
      '6',
      '--seed',
      '2',
      '--output',
      other,
    );
    expect(readFileSync(other)).to.not.deep.equal(readFileSync(again));

    const short = await polyglot(
      'data',
      'mix',
      chat,
      '--mix',
      'multi-6',
      '--total',
      '200',
      '--per-lang',
      '10',
      '--output',
      path.join(dir, 'x.jsonl'),
    );
    expect(short.code).to.equal(1);
    expect(short.stderr).to.include('cannot meet the quota — en: needs 150, the input has 40');
    expect(existsSync(path.join(dir, 'x.jsonl'))).to.equal(false);
    const two = await polyglot('data', 'mix', chat, '--output', path.join(dir, 'y.jsonl'));
    expect(two.code).to.equal(2);
    expect(two.stderr).to.include('need --out-dir');

    const q = await polyglot(
      'data',
      'mix',
      chat,
      '--recipe',
      'quota',
      '--quota',
      'de=5,hi=3',
      '--fill',
      'en',
      '--total',
      '20',
      '--output',
      path.join(dir, 'q.jsonl'),
    );
    expect(q.code, q.stderr).to.equal(0);
    expect(jsonLines(q.stdout)[0].counts).to.deep.equal({ en: 12, de: 5, hi: 3 });
    const t = await polyglot(
      'data',
      'mix',
      chat,
      '--recipe',
      'temperature',
      '--alpha',
      '0',
      '--total',
      '50',
      '--output',
      path.join(dir, 't.jsonl'),
    );
    expect(t.code, t.stderr).to.equal(0);
    expect(Object.values(jsonLines(t.stdout)[0].counts)).to.deep.equal([5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
    const noAlpha = await polyglot(
      'data',
      'mix',
      chat,
      '--recipe',
      'temperature',
      '--total',
      '5',
      '--output',
      path.join(dir, 'z.jsonl'),
    );
    expect(noAlpha.code).to.equal(2);
    expect(noAlpha.stderr).to.include('--alpha is required');
  });

  it('render: the paper template, quotes kept or stripped, built-in and tokenizer chat templates', async function () {
    const sample = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const kept = await polyglot('data', 'render', sample, '--template', 'paper');
    expect(kept.code, kept.stderr).to.equal(0);
    expect(jsonLines(kept.stdout)[0].prompt).to.equal(
      '### Human: "Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?"### Assistant:',
    );
    const stripped = await polyglot(
      'data',
      'render',
      sample,
      '--template',
      sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt'),
      '--quotes',
      'strip',
    );
    expect(jsonLines(stripped.stdout)[0].prompt).to.equal(
      '### Human: Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?### Assistant:',
    );
    const de = path.join(demo, 'test_prompts', 'de.jsonl');
    const chatml = await polyglot('data', 'render', de, '--template', 'chatml', '--system', 'Antworte kurz.');
    expect(jsonLines(chatml.stdout)[0].prompt).to.equal(
      '<|im_start|>system\nAntworte kurz.<|im_end|>\n<|im_start|>user\nWie kann ich mich im Homeoffice besser konzentrieren?<|im_end|>\n<|im_start|>assistant\n',
    );
    const tok = sharedPath(this, 'fixtures', 'llama2-tokenizer');
    const llama = await polyglot('data', 'render', de, '--template', 'llama-2-chat', '--tokenizer', tok);
    expect(llama.code, llama.stderr).to.equal(0);
    expect(jsonLines(llama.stdout)[0].prompt).to.equal(
      '<s>[INST] Wie kann ich mich im Homeoffice besser konzentrieren? [/INST]',
    );
    const noTemplate = await polyglot('data', 'render', de, '--template', 'tokenizer', '--tokenizer', tok);
    expect(noTemplate.code).to.equal(1);
    expect(noTemplate.stderr).to.include('no chat template');
    // conversations: the whole Guanaco conversation through a chat template, into a file
    const out = path.join(dir, 'chatml.jsonl');
    const conv = await polyglot(
      'data',
      'render',
      chat,
      '--template',
      'chatml',
      '--conversation-field',
      'text',
      '--out-field',
      'chatml',
      '--output',
      out,
    );
    expect(conv.code, conv.stderr).to.equal(0);
    const first = jsonLines(readFileSync(out, 'utf8'))[0];
    expect(first.chatml).to.match(
      /^<\|im_start\|>user\nHow do I boil an egg[\s\S]*<\|im_start\|>assistant\nPut the egg[\s\S]*<\|im_end\|>\n$/s,
    );
    const textOnConv = await polyglot(
      'data',
      'render',
      chat,
      '--template',
      'paper',
      '--conversation-field',
      'text',
    );
    expect(textOnConv.code).to.equal(2);
    expect(textOnConv.stderr).to.include('text template');
  });

  it('stats: per-language counts and lengths, tokens with a tokenizer', async function () {
    const r = await polyglot('data', 'stats', chat);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^en\s+40\s/m);
    expect(r.stdout).to.match(/^hi\s+20\s/m);
    expect(r.stdout).to.match(/^all\s+320\s/m);
    const tok = sharedPath(this, 'fixtures', 'llama2-tokenizer');
    const j = await polyglot('data', 'stats', chat, '--tokenizer', tok, '--json');
    expect(j.code, j.stderr).to.equal(0);
    const s = JSON.parse(j.stdout);
    expect(s.all.tokens.total).to.be.greaterThan(s.all.words.total);
    expect(s.languages.find((l: { lang: string }) => l.lang === 'zh').tokens.mean).to.be.greaterThan(10);
  });
});
