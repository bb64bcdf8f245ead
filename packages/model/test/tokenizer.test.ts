import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { isPolyglotError } from '../src/errors.js';
import { Tokenizer } from '../src/tokenizer.js';

interface ReferenceCase {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

function expectError(fn: () => unknown, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isPolyglotError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    if (message) expect((e as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected a ${code} error`);
}

async function expectRejection(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isPolyglotError(e), String(e)).to.equal(true);
    expect((e as { code: string }).code).to.equal(code);
    if (message) expect((e as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected a ${code} error`);
}

/** Streams `ids` through a DecodeStream one id at a time; returns the pieces (the flush last). */
function stream(tokenizer: Tokenizer, ids: number[], promptIds: number[] = []): string[] {
  const s = tokenizer.decodeStream({ promptIds });
  const pieces = ids.map((id) => s.step(id));
  pieces.push(s.flush());
  return pieces;
}

describe('Tokenizer (Llama-2 tokenizer.json)', () => {
  let dir: string;
  let tok: Tokenizer;
  let cases: ReferenceCase[];

  before(async function () {
    dir = sharedPath(this, 'fixtures', 'llama2-tokenizer');
    tok = await Tokenizer.fromDir(dir);
    cases = readJson(path.join(dir, 'reference.json')).cases;
  });

  it('encodes every reference case to the ids of the Python tokenizer (with BOS)', () => {
    expect(cases).to.have.length.greaterThan(5);
    for (const c of cases) expect(tok.encode(c.text), c.text).to.deep.equal(c.ids);
  });

  it('gives the reference tokens, and the same ids without BOS when special tokens are off', () => {
    for (const c of cases) {
      expect(tok.tokenize(c.text, { addSpecialTokens: true }), c.text).to.deep.equal(c.tokens);
      expect(tok.encode(c.text, { addSpecialTokens: false }), c.text).to.deep.equal(c.ids.slice(1));
    }
  });

  it('decodes every reference case (skipping special tokens) to the reference text', () => {
    for (const c of cases) expect(tok.decode(c.ids, { skipSpecialTokens: true }), c.text).to.equal(c.decoded);
  });

  it('keeps special tokens by default when decoding, as the Rust decoder chain does', () => {
    // Replace('▁', ' ') + Fuse gives "<s> Hello…"; Strip removes a leading space only, and "<" is first.
    for (const c of cases) expect(tok.decode(c.ids), c.text).to.equal(`<s> ${c.decoded}`);
  });

  it('encodes the prompts of tiny-llama/reference.json as the Python stack did', async function () {
    const base = await Tokenizer.fromDir(sharedPath(this, 'fixtures', 'tiny-llama', 'base'));
    const ref = readJson(sharedPath(this, 'fixtures', 'tiny-llama', 'reference.json'));
    expect(ref.prompts).to.have.length(ref.base.length);
    ref.prompts.forEach((prompt: string, i: number) => {
      expect(base.encode(prompt), prompt).to.deep.equal(ref.base[i].input_ids);
    });
  });

  it('merges like the Rust BPE (lowest rank first, leftmost on ties) on random multilingual text', () => {
    const json = readJson(path.join(dir, 'tokenizer.json'));
    const vocab = new Map<string, number>(Object.entries(json.model.vocab));
    const ranks = new Map<string, number>(
      json.model.merges.map(([a, b]: [string, string], i: number) => [`${a} ${b}`, i]),
    );
    const utf8 = new TextEncoder();
    // The tokenizer.json pipeline, written plainly: Prepend("▁") + Replace(" ", "▁"), then merge the
    // lowest-ranked adjacent pair until none is left, then byte fallback for pieces outside the vocabulary.
    const reference = (text: string): number[] => {
      if (text === '') return [];
      const pieces = Array.from(`▁${text.replaceAll(' ', '▁')}`);
      for (;;) {
        let best = -1;
        let bestRank = Number.POSITIVE_INFINITY;
        for (let i = 0; i + 1 < pieces.length; i++) {
          const rank = ranks.get(`${pieces[i]} ${pieces[i + 1]}`);
          if (rank !== undefined && rank < bestRank) [best, bestRank] = [i, rank];
        }
        if (best < 0) break;
        pieces.splice(best, 2, pieces[best] + pieces[best + 1]);
      }
      return pieces.flatMap((p) =>
        vocab.has(p)
          ? [vocab.get(p)!]
          : [...utf8.encode(p)].map(
              (b) => vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!,
            ),
      );
    };
    const alphabet = Array.from(
      'aaeeiioouu bcdfghklmnprst    ETAONIS.,;:!?\'"-()\n\t09ðþæöáéíÍÞçñüßπρωτεύσαΕλάδмашинноеकीराजधानी中国的首都哪里？🙂😀\u00a0\u200b',
    );
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let n = 0; n < 400; n++) {
      let text = '';
      const length = 1 + Math.floor(random() * 48);
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
      const ids = tok.encode(text, { addSpecialTokens: false });
      expect(ids, JSON.stringify(text)).to.deep.equal(reference(text));
      expect(tok.decode(ids), JSON.stringify(text)).to.equal(text);
    }
  });

  it('splits special tokens out of the text and encodes the empty text as BOS only', () => {
    expect(tok.encode('')).to.deep.equal([1]);
    expect(tok.encode('</s>', { addSpecialTokens: false })).to.deep.equal([2]);
    expect(tok.encode('Hello world</s>')).to.deep.equal([1, 15043, 3186, 2]);
  });

  it('decodes byte-fallback runs like the Rust ByteFallback decoder (one U+FFFD per byte of an invalid run)', () => {
    const b = (hex: string) => tok.tokenToId(`<0x${hex}>`);
    expect(tok.decode([b('E5'), b('93'), b('AA')])).to.equal('哪');
    expect(tok.decode([b('E5'), b('93')])).to.equal('\uFFFD\uFFFD');
    // The valid first character of an invalid run is lost too, as in Rust.
    expect(tok.decode([b('41'), b('E5'), tok.tokenToId('▁world')])).to.equal('\uFFFD\uFFFD world');
    expect(tok.decode([])).to.equal('');
  });

  it('maps tokens and ids both ways and reports unknown ones as typed errors', () => {
    expect(tok.tokenToId('▁Hello')).to.equal(15043);
    expect(tok.idToToken(15043)).to.equal('▁Hello');
    expect(tok.hasToken('<0x0A>')).to.equal(true);
    expect(tok.hasToken('<|im_start|>')).to.equal(false);
    expectError(() => tok.tokenToId('<|im_start|>'), 'UNKNOWN_TOKEN', /<\|im_start\|>.*llama2-tokenizer/);
    expectError(() => tok.idToToken(32000), 'UNKNOWN_TOKEN_ID', /32000/);
    expectError(() => tok.decode([1, 15043, -1]), 'UNKNOWN_TOKEN_ID', /-1/);
    expectError(() => tok.decode([1.5]), 'UNKNOWN_TOKEN_ID');
  });

  it('exposes the special tokens and settings of tokenizer_config.json', () => {
    expect([tok.bosToken, tok.bosId, tok.eosToken, tok.eosId, tok.unkToken, tok.unkId]).to.deep.equal([
      '<s>',
      1,
      '</s>',
      2,
      '<unk>',
      0,
    ]);
    expect([tok.padToken, tok.padId]).to.deep.equal([null, null]);
    expect([...tok.specialIds].sort()).to.deep.equal([0, 1, 2]);
    expect(tok.vocabSize).to.equal(32000);
    expect(tok.addBosToken).to.equal(true);
    expect(tok.addEosToken).to.equal(false);
    expect(tok.modelMaxLength).to.equal(4096);
    expect(tok.chatTemplate).to.equal(null);
  });

  it('summarizes itself for `model inspect`', () => {
    expect(tok.summary()).to.deep.equal({
      type: 'BPE',
      vocabSize: 32000,
      byteFallback: true,
      normalizer: 'Sequence(Prepend, Replace)',
      preTokenizer: null,
      decoder: 'Sequence(Replace, ByteFallback, Fuse, Strip)',
      bos: { token: '<s>', id: 1 },
      eos: { token: '</s>', id: 2 },
      unk: { token: '<unk>', id: 0 },
      pad: null,
      specialTokens: [
        { token: '<unk>', id: 0 },
        { token: '<s>', id: 1 },
        { token: '</s>', id: 2 },
      ],
      addBosToken: true,
      addEosToken: false,
      modelMaxLength: 4096,
      chatTemplates: [],
      hasChatTemplate: false,
    });
  });

  describe('DecodeStream', () => {
    it('streams every reference case token by token to the full decode', () => {
      for (const c of cases) expect(stream(tok, c.ids).join(''), c.text).to.equal(c.decoded);
    });

    it('continues a prompt: the pieces add up to the text after the prompt, at every split point', () => {
      for (const c of cases) {
        for (let k = 1; k < c.ids.length; k++) {
          const prompt = c.ids.slice(0, k);
          const expected = c.decoded.slice(tok.decode(prompt, { skipSpecialTokens: true }).length);
          expect(stream(tok, c.ids.slice(k), prompt).join(''), `${c.text} @${k}`).to.equal(expected);
        }
      }
    });

    it('holds back a character split over byte tokens until it is complete', () => {
      const b = (hex: string) => tok.tokenToId(`<0x${hex}>`);
      const ids = [
        tok.tokenToId('▁Hi'),
        tok.tokenToId('▁'),
        b('F0'),
        b('9F'),
        b('99'),
        b('82'),
        tok.tokenToId('!'),
      ];
      expect(stream(tok, ids)).to.deep.equal(['Hi', ' ', '', '', '', '🙂', '!', '']);
      const s = tok.decodeStream();
      expect([s.step(b('E5')), s.step(b('93'))]).to.deep.equal(['', '']);
      expect(s.flush()).to.equal('\uFFFD\uFFFD');
      expect(s.ids).to.deep.equal([b('E5'), b('93')]);
    });

    it('skips special tokens unless asked not to', () => {
      expect(stream(tok, [1, 15043, 2]).join('')).to.equal('Hello');
      const s = tok.decodeStream({ skipSpecialTokens: false });
      expect([15043, 2].map((id) => s.step(id)).join('') + s.flush()).to.equal('Hello</s>');
    });
  });
});

describe('Tokenizer settings and files', () => {
  let tokenizerJson: unknown;
  let tokenizerFile: string;
  let tmp: string;

  before(function () {
    tokenizerFile = sharedPath(this, 'fixtures', 'llama2-tokenizer', 'tokenizer.json');
    tokenizerJson = readJson(tokenizerFile);
  });
  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-tokenizer-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('lets add_bos_token / add_eos_token of tokenizer_config.json decide BOS and EOS, as LlamaTokenizer does', () => {
    const both = Tokenizer.fromJSON({
      tokenizer: tokenizerJson,
      config: { bos_token: '<s>', eos_token: '</s>', add_bos_token: true, add_eos_token: true },
    });
    expect(both.encode('Hello world')).to.deep.equal([1, 15043, 3186, 2]);
    expect(both.encode('Hello world', { addSpecialTokens: false })).to.deep.equal([15043, 3186]);
    expect([both.addBosToken, both.addEosToken]).to.deep.equal([true, true]);
    const none = Tokenizer.fromJSON({
      tokenizer: tokenizerJson,
      config: { bos_token: '<s>', add_bos_token: false },
    });
    expect(none.encode('Hello world')).to.deep.equal([15043, 3186]);
    expect(none.addBosToken).to.equal(false);
    // A flag that is not set keeps what tokenizer.json's post-processor does (<s>).
    const eosToo = Tokenizer.fromJSON({
      tokenizer: tokenizerJson,
      config: { bos_token: '<s>', eos_token: '</s>', add_eos_token: true },
    });
    expect(eosToo.encode('Hello world')).to.deep.equal([1, 15043, 3186, 2]);
    // Without the flags, tokenizer.json's post-processor (which adds <s>) decides.
    expect(Tokenizer.fromJSON({ tokenizer: tokenizerJson }).encode('Hello world')).to.deep.equal([
      1, 15043, 3186,
    ]);
  });

  it('reads AddedToken objects, lets special_tokens_map.json override, and treats 1e30 as no length limit', () => {
    const t = Tokenizer.fromJSON({
      tokenizer: tokenizerJson,
      config: {
        bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: false, special: true },
        eos_token: '<s>',
        model_max_length: 1e30,
        additional_special_tokens: ['<0x0A>'],
      },
      specialTokensMap: { eos_token: { content: '</s>' }, pad_token: '</s>' },
    });
    expect([t.bosId, t.eosId, t.padId, t.padToken]).to.deep.equal([1, 2, 2, '</s>']);
    expect(t.modelMaxLength).to.equal(null);
    expect(t.specialIds.has(13)).to.equal(true);
    expect(t.decode([1, 15043, 13, 3186], { skipSpecialTokens: true })).to.equal('Hello world');
  });

  it('rejects a special token that is not in the vocabulary, or add_eos_token without an eos_token', () => {
    expectError(
      () => Tokenizer.fromJSON({ tokenizer: tokenizerJson, config: { pad_token: '<pad>' }, source: 'x' }),
      'TOKENIZER_CONFIG_INVALID',
      /pad_token "<pad>" is not in the vocabulary/,
    );
    expectError(
      () => Tokenizer.fromJSON({ tokenizer: tokenizerJson, config: { add_eos_token: true } }),
      'TOKENIZER_CONFIG_INVALID',
      /add_eos_token/,
    );
    expectError(() => Tokenizer.fromJSON({ tokenizer: { version: '1.0' } }), 'TOKENIZER_INVALID');
    expectError(
      () => Tokenizer.fromJSON({ tokenizer: { model: { type: 'Mystery' } } }),
      'TOKENIZER_UNSUPPORTED',
      /Mystery/,
    );
  });

  it('reads a chat template list, and chat_template.jinja over tokenizer_config.json', async () => {
    const listed = Tokenizer.fromJSON({
      tokenizer: tokenizerJson,
      config: {
        chat_template: [
          { name: 'default', template: 'D{{ messages[0].content }}' },
          { name: 'tool_use', template: 'T' },
        ],
      },
    });
    expect(listed.chatTemplate).to.equal('D{{ messages[0].content }}');
    expect(listed.summary().chatTemplates).to.deep.equal(['default', 'tool_use']);
    expect(listed.applyChatTemplate([{ role: 'user', content: 'x' }])).to.equal('Dx');
    expect(listed.applyChatTemplate([{ role: 'user', content: 'x' }], { chatTemplate: 'tool_use' })).to.equal(
      'T',
    );

    symlinkSync(tokenizerFile, path.join(tmp, 'tokenizer.json'));
    writeFileSync(path.join(tmp, 'tokenizer_config.json'), JSON.stringify({ chat_template: 'from config' }));
    writeFileSync(path.join(tmp, 'chat_template.jinja'), '{{ bos_token }}from file');
    const fromDir = await Tokenizer.fromDir(tmp);
    expect(fromDir.chatTemplate).to.equal('{{ bos_token }}from file');
    expect(fromDir.applyChatTemplate([])).to.equal('from file');
  });

  it('names the missing or malformed file', async () => {
    await expectRejection(Tokenizer.fromDir(tmp), 'TOKENIZER_FILE_MISSING', /tokenizer\.json: not found/);
    writeFileSync(path.join(tmp, 'tokenizer.model'), 'x');
    await expectRejection(Tokenizer.fromDir(tmp), 'TOKENIZER_FILE_MISSING', /only tokenizer\.model/);
    symlinkSync(tokenizerFile, path.join(tmp, 'tokenizer.json'));
    writeFileSync(path.join(tmp, 'tokenizer_config.json'), '{"bos_token": "<s>",');
    await expectRejection(
      Tokenizer.fromDir(tmp),
      'TOKENIZER_JSON_INVALID',
      /tokenizer_config\.json: invalid JSON/,
    );
    await expectRejection(
      Tokenizer.fromFiles({ tokenizer: tokenizerFile, config: path.join(tmp, 'nope.json') }),
      'TOKENIZER_FILE_MISSING',
      /nope\.json: not found/,
    );
  });
});

describe('Tokenizer.applyChatTemplate', () => {
  let tok: Tokenizer;
  before(async function () {
    tok = await Tokenizer.fromDir(sharedPath(this, 'fixtures', 'llama2-tokenizer'));
  });

  it('tokenizes llama-2-chat exactly as Meta’s chat_completion encodes the dialog, segment by segment', () => {
    const dialog = [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'What is the capital of Iceland?' },
      { role: 'assistant', content: 'Reykjavík.' },
      { role: 'user', content: 'And of Greece?' },
    ];
    const ids = tok.applyChatTemplate(dialog, { chatTemplate: 'llama-2-chat', tokenize: true });
    // Meta: encode(f"[INST] {B_SYS}{system}{E_SYS}{user} [/INST] {answer} ", bos, eos) + encode("[INST] … [/INST]", bos).
    const first =
      '[INST] <<SYS>>\nAnswer briefly.\n<</SYS>>\n\nWhat is the capital of Iceland? [/INST] Reykjavík. ';
    const expected = [
      1,
      ...tok.encode(first, { addSpecialTokens: false }),
      2,
      1,
      ...tok.encode('[INST] And of Greece? [/INST]', { addSpecialTokens: false }),
    ];
    expect(ids).to.deep.equal(expected);
  });

  it('fills bos_token / eos_token from the tokenizer and passes extra variables', () => {
    const text = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], {
      chatTemplate: '{{ bos_token }}{{ messages[0].content }}{{ eos_token }}{{ suffix }}',
      vars: { suffix: '!' },
    });
    expect(text).to.equal('<s>Hi</s>!');
    expect(
      tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], {
        chatTemplate: 'chatml',
        addGenerationPrompt: true,
      }),
    ).to.equal('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('says so when the tokenizer has no chat template', () => {
    expectError(
      () => tok.applyChatTemplate([{ role: 'user', content: 'Hi' }]),
      'NO_CHAT_TEMPLATE',
      /no chat template/,
    );
  });
});
