import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { scoreFor, startJudgeServer } from '../../../tools/judge-server.js';
import { repoRoot, sharedPath } from '../../../tools/shared.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js');

function polyglot(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Json = Record<string, any>;
const readJson = (file: string): Json => JSON.parse(readFileSync(file, 'utf8'));
const lines = (file: string): Json[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

/** Data of every built-in task in German: XQuAD linked from ../shared, small X-CSQA, XNLI and chat files. */
function writeData(dir: string, xquad: string): void {
  mkdirSync(path.join(dir, 'xcsqa'), { recursive: true });
  mkdirSync(path.join(dir, 'xnli'), { recursive: true });
  mkdirSync(path.join(dir, 'paper-alpaca-eval'), { recursive: true });
  symlinkSync(xquad, path.join(dir, 'xquad'));
  const q = (stem: string, options: string[], answerKey: string) => ({
    question: { stem, choices: options.map((text, k) => ({ label: 'ABCDE'[k], text })) },
    answerKey,
  });
  writeFileSync(
    path.join(dir, 'xcsqa', 'xcsqa.de.jsonl'),
    jsonl([
      q('Wo findet man viele Bücher?', ['Bibliothek', 'Wüste', 'Ozean', 'Himmel', 'Vulkan'], 'A'),
      q('Womit schreibt man?', ['Löffel', 'Stift', 'Teller', 'Schuh', 'Baum'], 'B'),
    ]),
  );
  writeFileSync(
    path.join(dir, 'xnli', 'xnli.de.jsonl'),
    jsonl([
      { premise: 'Der Hund schläft im Garten.', hypothesis: 'Ein Tier ruht draußen.', label: 0 },
      { premise: 'Sie kaufte gestern Brot.', hypothesis: 'Sie hat nie Brot gekauft.', label: 2 },
    ]),
  );
  writeFileSync(
    path.join(dir, 'paper-alpaca-eval', 'alpaca_eval_instructions_de.json'),
    jsonl([{ instruction: '"Wie backe ich ein einfaches Brot?"' }, { instruction: '"Nenne drei Städte."' }]),
  );
}

/** Starts `polyglot infer serve … --port 0` and resolves with its URL once it listens. */
function serve(model: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [bin, 'infer', 'serve', '--model', model, '--port', '0', '--backend', 'wasm', '--quiet'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
}

const ALL = ['--task', 'chat,xcsqa,xcsqa_mc,xquad,xnli', '--langs', 'de', '--limit', '2', '--seeds', '0'];

describe('polyglot tasks', () => {
  let model: string;
  let tmp: string;
  let data: string;

  before(function () {
    model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-cli-tasks-'));
    data = path.join(tmp, 'data');
    writeData(data, sharedPath(this, 'data', 'xquad'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('list: the built-ins, YAML folders and task packages', () => {
    const r = polyglot('tasks', 'list', '--json', '--task-package', './examples/task-package');
    expect(r.code, r.stderr).to.equal(0);
    const tasks = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(tasks.map((t) => t.name)).to.deep.equal([
      'chat',
      'xcsqa',
      'xcsqa_mc',
      'xquad',
      'xnli',
      'capitals',
      'capitals_mc',
    ]);
    const xquad = tasks.find((t) => t.name === 'xquad');
    expect(xquad).to.deep.include({
      output_type: 'generate_until',
      metrics: ['containment', 'exact_match', 'f1'],
    });
    expect(xquad.generation.seeds).to.deep.equal([0, 42, 723]);
    const text = polyglot('tasks', 'list', '--include-path', './examples/task-package/yaml');
    expect(text.stdout).to.match(/^capitals_mc {2}multiple_choice {2}acc, acc_norm/m);
    expect(text.stdout).to.include('group capitals_suite: capitals_mc');
  });

  let localDir: string;

  it('run: every built-in task through the local engine, results.json and samples files', () => {
    localDir = path.join(tmp, 'local');
    const r = polyglot(
      'tasks',
      'run',
      ...ALL,
      '--engine',
      `local:${model}`,
      '--backend',
      'wasm',
      '--output-dir',
      localDir,
      '--data-dir',
      data,
      '--gen-kwargs',
      'max_tokens=5',
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(
      /^\| Tasks +\| Version \| Filter \| n-shot \| Metric +\| Value +\| Stderr +\|$/m,
    );
    expect(r.stdout).to.match(/^\| xnli_de +\| 1\.0 +\| none +\| 0 +\| acc +\|/m);
    expect(r.stderr).to.include('"event":"progress"');
    const res = readJson(path.join(localDir, 'results.json'));
    expect(Object.keys(res.results)).to.deep.equal([
      'chat_de',
      'xcsqa_de',
      'xcsqa_mc_de',
      'xquad_de',
      'xnli_de',
    ]);
    expect(res.results.xnli_de).to.have.keys('alias', 'acc,none', 'acc_stderr,none');
    expect(res.config).to.deep.include({
      engine: `local:${model}`,
      engine_kind: 'local',
      backend: 'wasm',
      gen_kwargs: { max_tokens: 5 },
    });
    for (const v of Object.keys(res.results))
      expect(lines(path.join(localDir, `samples_${v}.jsonl`))).to.have.length(2);
  });

  it('run: the same through our OpenAI-compatible server gives the same responses', async () => {
    const { child, url } = await serve(model);
    try {
      const dir = path.join(tmp, 'remote');
      const args = [
        ...ALL,
        '--engine',
        `openai:${url}`,
        '--output-dir',
        dir,
        '--data-dir',
        data,
        '--gen-kwargs',
        'max_tokens=5',
      ];
      // A server has no tokenizer here: give ours and the context left (512 − 5) to fit XQuAD's long prompts.
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          [bin, 'tasks', 'run', ...args, '--tokenizer', model, '--max-prompt-tokens', '507', '--quiet'],
          { cwd: repoRoot },
        );
        let stderr = '';
        c.stderr.on('data', (d) => {
          stderr += d;
        });
        c.on('exit', (code) => resolve({ code, stderr }));
      });
      expect(r.code, r.stderr).to.equal(0);
      const res = readJson(path.join(dir, 'results.json'));
      expect(res.config).to.deep.include({ engine: `openai:${url}`, engine_kind: 'openai', backend: null });
      for (const v of ['chat_de', 'xcsqa_de', 'xcsqa_mc_de', 'xquad_de', 'xnli_de']) {
        const a = lines(path.join(localDir, `samples_${v}.jsonl`));
        const b = lines(path.join(dir, `samples_${v}.jsonl`));
        expect(
          b.map((s) => s.request_hash),
          v,
        ).to.deep.equal(a.map((s) => s.request_hash));
        b.forEach((s, i) => {
          if (s.response.type === 'generate_until') expect(s.response.text, v).to.equal(a[i]!.response.text);
          else
            s.response.logprobs.forEach((lp: number, k: number) => {
              expect(lp).to.be.closeTo(a[i]!.response.logprobs[k], 1e-4);
            });
        });
        expect(res.results[v]).to.deep.equal(readJson(path.join(localDir, 'results.json')).results[v]);
      }
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('run: killed mid-run (SIGKILL) and run again gives what an uninterrupted run gives', async () => {
    const args = (dir: string) => [
      bin,
      'tasks',
      'run',
      '--task',
      'xquad',
      '--langs',
      'de,en:de',
      '--limit',
      '6',
      '--seeds',
      '0,1',
      '--batch-size',
      '1',
      '--engine',
      `local:${model}`,
      '--backend',
      'wasm',
      '--output-dir',
      dir,
      '--data-dir',
      data,
      '--gen-kwargs',
      'max_tokens=24',
    ];
    const whole = path.join(tmp, 'whole');
    expect(spawnSync(process.execPath, args(whole), { encoding: 'utf8' }).status).to.equal(0);

    const cut = path.join(tmp, 'cut');
    const first = path.join(cut, 'samples_xquad_de.jsonl');
    const child = spawn(process.execPath, args(cut), { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const t0 = Date.now();
    while (!(existsSync(first) && lines(first).length >= 2) && Date.now() - t0 < 60_000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await exited;
    const before = lines(first).length;
    expect(before, 'killed before the end').to.be.within(2, 11);
    expect(existsSync(path.join(cut, 'results.json'))).to.equal(false);

    const again = spawnSync(process.execPath, args(cut), { encoding: 'utf8' });
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.match(
      new RegExp(`"variant":"xquad_de","done":${before},"total":12,"resumed":${before}`),
    );
    const a = readJson(path.join(whole, 'results.json'));
    const b = readJson(path.join(cut, 'results.json'));
    expect(b.results).to.deep.equal(a.results);
    expect(b.per_seed).to.deep.equal(a.per_seed);
    for (const v of ['xquad_de', 'xquad_en_de']) {
      const sorted = (dir: string) =>
        lines(path.join(dir, `samples_${v}.jsonl`))
          .map((s) => JSON.stringify(s))
          .sort();
      expect(sorted(cut)).to.deep.equal(sorted(whole));
    }
  });

  it('score: rescoring samples files and paper-style run files without generating', () => {
    const r = polyglot(
      'tasks',
      'score',
      '--task',
      'xquad',
      '--input',
      path.join(localDir, 'samples_xquad_de.jsonl'),
      '--json',
    );
    expect(r.code, r.stderr).to.equal(0);
    const res = JSON.parse(r.stdout);
    expect(res.results.xquad_de).to.deep.equal(
      readJson(path.join(localDir, 'results.json')).results.xquad_de,
    );

    const run = path.join(tmp, 'xquad_dev_en_de-none-guanaco_prompt-s0-k50-p0.9-t0.001-b8.jsonl');
    writeFileSync(
      run,
      jsonl([
        { prompt: 'p', system: '308" Punkte', reference: '308' },
        { prompt: 'p', system: 'vier', reference: '136' },
      ]),
    );
    const out = path.join(tmp, 'scored');
    const s = polyglot('tasks', 'score', '--task', 'xquad', '--input', run, '--output-dir', out);
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/^\| xquad_en_de +\| 1\.0 +\| none +\| 0 +\| containment +\| 0\.5000 \|/m);
    expect(
      lines(path.join(out, 'samples_xquad_en_de.jsonl')).map((x) => x.scores['exact_match,none']),
    ).to.deep.equal([1, 0]);
    expect(readJson(path.join(out, 'results.json')).config).to.deep.include({ engine: 'score' });
  });

  it('run: chat helpfulness through an OpenAI-compatible judge (the paper: temperature 0, seed 42)', async () => {
    const judge = await startJudgeServer();
    try {
      const dir = path.join(tmp, 'judged');
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          [
            bin,
            'tasks',
            'run',
            '--task',
            'chat',
            '--langs',
            'de',
            '--seeds',
            '0',
            '--engine',
            `local:${model}`,
            '--backend',
            'wasm',
            '--output-dir',
            dir,
            '--data-dir',
            data,
            '--gen-kwargs',
            'max_tokens=4',
            '--judge-url',
            judge.url,
            '--judge-model',
            'judge-x',
            '--quiet',
          ],
          { cwd: repoRoot },
        );
        let stderr = '';
        c.stderr.on('data', (d) => {
          stderr += d;
        });
        c.on('exit', (code) => resolve({ code, stderr }));
      });
      expect(r.code, r.stderr).to.equal(0);
      const sent = judge.chat();
      expect(sent).to.have.length(2);
      expect(sent[0]!.body).to.deep.include({ model: 'judge-x', temperature: 0, seed: 42 });
      const scores = sent.map((q) => scoreFor(q.body));
      const res = readJson(path.join(dir, 'results.json'));
      expect(res.results.chat_de['helpfulness,none']).to.be.closeTo((scores[0]! + scores[1]!) / 2, 1e-12);
      expect(res.config.judge).to.equal(`judge-x @ ${judge.url}`);
    } finally {
      await judge.close();
    }
  });

  it('says what is wrong in one line: unknown tasks, options, missing data, bad flags', () => {
    const bad = (args: string[], code: number, pattern: RegExp) => {
      const r = polyglot(
        'tasks',
        'run',
        '--engine',
        `local:${model}`,
        '--output-dir',
        path.join(tmp, 'bad'),
        ...args,
      );
      expect(r.code, r.stderr).to.equal(code);
      expect(r.stderr).to.match(pattern);
      expect(r.stderr).to.not.include('    at ');
    };
    bad(['--task', 'xquadd'], 1, /unknown task "xquadd"; known tasks: chat, xcsqa/);
    bad(['--task', 'xquad', '--langs', 'de', '--set', 'windw=3'], 1, /unknown task option "windw"/);
    bad(
      ['--task', 'xnli', '--langs', 'fr', '--data-dir', data],
      1,
      /xnli \(fr\): no data file .*polyglot data get xnli/,
    );
    bad(['--task', 'xquad', '--gen-kwargs', 'temperature=-1'], 2, /temperature/);
    bad(['--task', 'xquad', '--model', 'x'], 2, /--model names the served model/);
  });
});
