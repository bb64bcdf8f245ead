import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Checkpoint, validateLlamaCheckpoint } from '../src/checkpoint.js';
import { parseLlamaConfig, readLlamaConfig } from '../src/config.js';
import { LlamaModel } from '../src/llama/model.js';
import {
  BYTE_VOCAB_SIZE,
  byteLevelTokenizerJson,
  initLlamaWeights,
  llamaConfigJson,
  TINY_CONFIGS,
  tokenizerConfigJson,
  writeRandomLlama,
} from '../src/tiny.js';
import { Tokenizer } from '../src/tokenizer.js';
import { useTempDir } from './formats-helpers.js';

const TEXTS = [
  'Hello, world! How do I boil an egg?',
  '  leading and trailing spaces  \n\ttabs\r\nCRLF',
  'Привет, мир! Как дела?',
  '你好，世界。今天天气很好。',
  'नमस्ते दुनिया, आप कैसे हैं?',
  'Γειά σου κόσμε· τι κάνεις;',
  'Halló heimur, þú ert æðislegur',
  'Здравей, свят — български',
  'emoji 😀👍🏽 and combining é and ß€',
  '### Human: Hi### Assistant: Hello</s> <s> <unk>',
  '',
];

describe('tiny byte-level models', () => {
  const tmp = useTempDir();
  const tok = Tokenizer.fromJSON({
    tokenizer: byteLevelTokenizerJson() as never,
    config: tokenizerConfigJson() as never,
  });

  it('has 259 tokens: <unk> <s> </s> then the 256 bytes', () => {
    expect(tok.vocabSize).to.equal(BYTE_VOCAB_SIZE);
    expect([tok.unkId, tok.bosId, tok.eosId]).to.deep.equal([0, 1, 2]);
    expect(tok.addBosToken).to.equal(true);
    expect(tok.encode('A', { addSpecialTokens: false })).to.deep.equal([0x41 + 3]);
  });

  it('encodes every UTF-8 text as BOS + its bytes + 3 and decodes it back byte for byte', () => {
    for (const text of TEXTS.filter((t) => !t.includes('<'))) {
      const ids = tok.encode(text);
      expect(ids[0]).to.equal(1);
      expect(ids.slice(1)).to.deep.equal([...Buffer.from(text, 'utf8')].map((b) => b + 3));
      expect(tok.decode(ids, { skipSpecialTokens: true })).to.equal(text);
    }
  });

  it('round-trips random byte strings of valid UTF-8 (all code point ranges)', () => {
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let n = 0; n < 200; n++) {
      let s = '';
      for (let i = 0; i < 20; i++) {
        const ranges = [
          [0x20, 0x7f],
          [0x80, 0x7ff],
          [0x800, 0xd7ff],
          [0xe000, 0xfffd],
          [0x10000, 0x10ffff],
        ];
        const [lo, hi] = ranges[Math.floor(rand() * ranges.length)];
        s += String.fromCodePoint(lo + Math.floor(rand() * (hi - lo)));
      }
      const ids = tok.encode(s);
      expect(ids.length).to.equal(Buffer.byteLength(s) + 1);
      expect(tok.decode(ids, { skipSpecialTokens: true })).to.equal(s);
    }
  });

  it('keeps the special tokens as written and renders the guanaco chat template', () => {
    const ids = tok.encode('a</s>b', { addSpecialTokens: false });
    expect(ids).to.deep.equal([0x61 + 3, 2, 0x62 + 3]);
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    expect(prompt).to.equal('### Human: Hi### Assistant:');
  });

  it('config.json is a valid Llama config for both presets', () => {
    for (const preset of ['smoke', 'tiny'] as const) {
      const c = TINY_CONFIGS[preset];
      const parsed = parseLlamaConfig(llamaConfigJson(c), `${preset}/config.json`);
      const { raw: _a, ...want } = c;
      const { raw: _b, ...got } = parsed;
      expect(got).to.deep.equal(want);
      expect(c.vocabSize).to.equal(BYTE_VOCAB_SIZE);
      expect(c.hiddenSize % c.numAttentionHeads).to.equal(0);
    }
  });

  it('initialises deterministically: N(0, 0.02) weights, unit norms; another seed differs', () => {
    const c = TINY_CONFIGS.smoke;
    const a = initLlamaWeights(c, { seed: 3 });
    const b = initLlamaWeights(c, { seed: 3 });
    const d = initLlamaWeights(c, { seed: 4 });
    for (const [name, t] of a)
      expect(Buffer.from(t.data.buffer).equals(Buffer.from(b.get(name)!.data.buffer))).to.equal(true);
    const q = a.get('model.layers.0.self_attn.q_proj.weight')!.data;
    expect(
      Buffer.from(q.buffer).equals(Buffer.from(d.get('model.layers.0.self_attn.q_proj.weight')!.data.buffer)),
    ).to.equal(false);
    const mean = q.reduce((s, v) => s + v, 0) / q.length;
    const std = Math.sqrt(q.reduce((s, v) => s + (v - mean) ** 2, 0) / q.length);
    expect(Math.abs(mean)).to.be.below(0.002);
    expect(std).to.be.closeTo(0.02, 0.001);
    expect([...a.get('model.norm.weight')!.data].every((v) => v === 1)).to.equal(true);
  });

  it('writes a checkpoint directory that validates, loads in LlamaModel and generates', async () => {
    const dir = path.join(tmp(), 'smoke');
    await writeRandomLlama(dir, TINY_CONFIGS.smoke, { seed: 1 });
    const again = path.join(tmp(), 'again');
    await writeRandomLlama(again, TINY_CONFIGS.smoke, { seed: 1 });
    expect(
      readFileSync(path.join(dir, 'model.safetensors')).equals(
        readFileSync(path.join(again, 'model.safetensors')),
      ),
    ).to.equal(true);
    const ckpt = await Checkpoint.open(dir);
    validateLlamaCheckpoint(ckpt);
    expect(ckpt.tensorInfo('model.embed_tokens.weight').dtype).to.equal('F32');
    await ckpt.close();
    const config = await readLlamaConfig(dir);
    expect(config.vocabSize).to.equal(259);
    const fromDir = await Tokenizer.fromDir(dir);
    expect(fromDir.encode('Ωμέγα')).to.deep.equal(tok.encode('Ωμέγα'));
    const cfg = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(cfg.chat_template).to.be.a('string');
    expect([cfg.bos_token, cfg.eos_token, cfg.add_bos_token]).to.deep.equal(['<s>', '</s>', true]);
    const model = await LlamaModel.load(dir, { backend: 'cpu' });
    try {
      const ids = fromDir.encode('Hello');
      const scores = await model.scoreTokens(ids);
      expect(scores.tokenLogprobs).to.have.length(ids.length - 1);
      // Near-uniform at initialisation: log(1/259) ≈ −5.56.
      for (const lp of scores.tokenLogprobs) expect(lp).to.be.closeTo(-Math.log(259), 0.5);
      const out = await model.greedy([ids], 4);
      expect(out[0]).to.have.length(4);
    } finally {
      model.dispose();
    }
  });
});
