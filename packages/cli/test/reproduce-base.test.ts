import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checkpoint, LlamaModel, Tokenizer, validateLlamaCheckpoint } from '@polyglot/model';
import { expect } from 'chai';
import {
  BASE_MARKER,
  BASE_PRESETS,
  type BaseMarker,
  buildPretrainCorpus,
  ensureBaseModel,
  findDemoData,
} from '../src/reproduce/base.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('reproduce: the embedded base model', () => {
  let cache: string;
  before(() => {
    cache = mkdtempSync(path.join(os.tmpdir(), 'polyglot-base-'));
  });
  after(() => rmSync(cache, { recursive: true, force: true }));

  it('finds the demo data from the package and from an explicit root', () => {
    const demo = path.join(repoRoot, 'data', 'demo');
    expect(findDemoData()).to.equal(demo);
    expect(findDemoData(repoRoot)).to.equal(demo);
    expect(findDemoData(demo)).to.equal(demo);
    expect(() => findDemoData(cache)).to.throw(/no chat\.jsonl/);
  });

  it('builds an English-heavy corpus (90% English bytes, every other language a little)', () => {
    const c = buildPretrainCorpus({ root: repoRoot });
    expect(c.shares.en).to.be.within(0.89, 0.92);
    const others = Object.keys(c.bytes).filter((l) => l !== 'en');
    expect(others.sort()).to.deep.equal(['bg', 'de', 'el', 'es', 'fr', 'hi', 'is', 'ru', 'zh']);
    for (const l of others) {
      expect(c.bytes[l]).to.be.above(40);
      expect(c.shares[l]).to.be.below(0.02);
    }
    expect(c.totalBytes).to.equal(c.texts.reduce((a, t) => a + Buffer.byteLength(t), 0));
    // Nothing from the test prompts.
    const prompts = readFileSync(path.join(repoRoot, 'data/demo/test_prompts/en.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).instruction as string);
    for (const p of prompts) expect(c.texts.some((t) => t.includes(p))).to.equal(false);
    const more = buildPretrainCorpus({ root: repoRoot, englishShare: 0.5 });
    expect(more.shares.en).to.be.within(0.45, 0.55);
    expect(more.sha256).to.not.equal(c.sha256);
  });

  it('pre-trains the smoke base once, then serves it from the cache', async () => {
    const events: { event?: string }[] = [];
    const first = await ensureBaseModel({
      preset: 'smoke',
      cacheDir: cache,
      steps: 12,
      onProgress: (p) => events.push(p as { event?: string }),
    });
    expect(first.cached).to.equal(false);
    expect(first.dir.startsWith(path.join(cache, 'base', 'smoke-'))).to.equal(true);
    expect(events[0].event).to.equal('start');
    expect(events.at(-1)?.event).to.equal('done');
    expect(first.finalLoss).to.be.below(Math.log(259));
    const marker = JSON.parse(readFileSync(path.join(first.dir, BASE_MARKER), 'utf8')) as BaseMarker;
    expect(marker.training.steps).to.equal(12);
    expect(marker.config.hidden_size).to.equal(BASE_PRESETS.smoke.config.hiddenSize);
    expect(existsSync(path.join(first.dir, 'init'))).to.equal(false);
    expect(existsSync(path.join(first.dir, 'checkpoints'))).to.equal(false);

    const ckpt = await Checkpoint.open(first.dir);
    validateLlamaCheckpoint(ckpt);
    await ckpt.close();
    const tok = await Tokenizer.fromDir(first.dir);
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    const model = await LlamaModel.load(first.dir, { backend: 'wasm' });
    try {
      const out = await model.greedy([tok.encode(prompt)], 5);
      expect(out[0]).to.have.length(5);
    } finally {
      model.dispose();
    }

    const second = await ensureBaseModel({ preset: 'smoke', cacheDir: cache, steps: 12 });
    expect(second.cached).to.equal(true);
    expect(second.dir).to.equal(first.dir);
    expect(second.finalLoss).to.equal(first.finalLoss);
    expect(second.config).to.deep.equal(first.config);

    expect(readdirSync(path.join(cache, 'base'))).to.have.length(1);
  });

  it('resumes a build that was killed, from its last pre-training checkpoint', async () => {
    const cacheDir = path.join(cache, 'killed');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'packages/cli/test/helpers/base-child.ts'), cacheDir, '30'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let dir = '';
    let out = '';
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Kill it as soon as its first checkpoint (after update 10) is on disk.
    await new Promise<void>((resolve, reject) => {
      child.on('exit', () => reject(new Error(`the child exited before its first checkpoint:\n${out}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const start = out.split('\n').find((l) => l.includes('"event":"start"'));
        if (start) dir = JSON.parse(start).dir;
        if (/checkpoint-10"/.test(out)) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await exited;
    expect(existsSync(path.join(dir, BASE_MARKER))).to.equal(false);
    expect(existsSync(path.join(dir, 'checkpoints', 'checkpoint-10'))).to.equal(true);

    const messages: string[] = [];
    const r = await ensureBaseModel({
      preset: 'smoke',
      cacheDir,
      steps: 30,
      onProgress: (p) => {
        const e = p as { event: string; text?: string };
        if (e.event === 'message' && e.text) messages.push(e.text);
      },
    });
    expect(r.cached).to.equal(false);
    expect(r.dir).to.equal(dir);
    expect(messages.some((m) => /resuming from .*checkpoint-10 \(update 10 of 30\)/.test(m))).to.equal(true);
    const log = readFileSync(path.join(dir, 'train-log.jsonl'), 'utf8').trim().split('\n');
    expect(log.map((l) => JSON.parse(l).step)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
    expect((await ensureBaseModel({ preset: 'smoke', cacheDir, steps: 30 })).cached).to.equal(true);
  });
});
