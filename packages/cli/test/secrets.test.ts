// API keys never appear in outputs, argument JSON files, logs, caches or error messages: real commands and
// servers run with recognisable fake keys, and every file written under the output and cache folders, stdout,
// stderr and the error messages are searched for them.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type JudgeServer, jsonAnswer, startJudgeServer } from '../../../tools/judge-server.js';
import { sharedPath } from '../../../tools/shared.js';
import { shownEngineSpec } from '../src/secrets.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/index.js');

/** Every key used here contains this; nothing written or printed may. */
const MARK = 'FAKEKEY7Q9Z';
const SERVER_KEY = `srv-${MARK}-server-0123456789`;
const CLIENT_KEY = `sk-proj-${MARK}-client-abcdef012345`;
const WRONG_KEY = `sk-proj-${MARK}-wrong-abcdef987654`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function polyglot(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, OPENAI_API_KEY: '', POLYGLOT_SERVE_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** `polyglot infer serve … --port 0`, resolved once it listens. */
function serve(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ child: ChildProcess; url: string; out: () => string; err: () => string }> {
  const child = spawn(process.execPath, [bin, 'infer', 'serve', '--port', '0', ...args], {
    env: { ...process.env, POLYGLOT_SERVE_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve({ child, url: m[1], out: () => out, err: () => err });
    });
    child.on('exit', (code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

/** Every file under `dir` (recursively). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/** Asserts that no file under `dirs` (except the key files) and no text contains the mark of the keys. */
function expectNoKey(dirs: string[], texts: Record<string, string>, keyFiles: string[]): number {
  let searched = 0;
  for (const [what, text] of Object.entries(texts)) expect(text, what).to.not.include(MARK);
  for (const dir of dirs) {
    for (const f of filesUnder(dir)) {
      if (keyFiles.includes(f)) continue;
      searched++;
      expect(readFileSync(f).toString('latin1'), f).to.not.include(MARK);
    }
  }
  return searched;
}

describe('secrets: API keys never reach outputs, argument files, logs, caches or errors', () => {
  let tmp: string;
  let model: string;
  let template: string;
  let input: string;

  before(function () {
    model = sharedPath(this, 'fixtures', 'tiny-llama', 'base');
    template = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-secrets-'));
    for (const [name, key] of [
      ['server.key', SERVER_KEY],
      ['client.key', CLIENT_KEY],
      ['wrong.key', WRONG_KEY],
    ]) {
      writeFileSync(path.join(tmp, name), `${key}\n`);
    }
    input = path.join(tmp, 'items.jsonl');
    writeFileSync(
      input,
      ['Hallo!', 'Nenne drei Farben.'].map((q) => `${JSON.stringify({ instruction: q })}\n`).join(''),
    );
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const keyFiles = () => ['server.key', 'client.key', 'wrong.key'].map((f) => path.join(tmp, f));
  const run = (url: string, out: string, extra: string[], env: NodeJS.ProcessEnv = {}) =>
    polyglot(
      [
        'infer',
        'run',
        '--engine',
        `openai:${url}`,
        '--model',
        'tiny',
        '--input',
        input,
        '--prompt-template',
        template,
        '--output-dir',
        out,
        '--max-new-tokens',
        '3',
        '--seeds',
        '1',
        '--temperature',
        '0',
        '--retries',
        '0',
        ...extra,
      ],
      env,
    );

  it('infer serve --api-key-file / $POLYGLOT_SERVE_API_KEY, infer run --api-key-file / $OPENAI_API_KEY', async () => {
    const server = await serve([
      '--model',
      model,
      '--backend',
      'wasm',
      '--served-model-name',
      'tiny',
      '--api-key-file',
      path.join(tmp, 'server.key'),
    ]);
    const results: Result[] = [];
    try {
      expect(server.out()).to.include('API key required');
      // The key from a file, then from the environment: the run succeeds.
      const byFile = await run(server.url, path.join(tmp, 'out-file'), [
        '--api-key-file',
        path.join(tmp, 'server.key'),
      ]);
      expect(byFile.code, byFile.stderr).to.equal(0);
      const byEnv = await run(server.url, path.join(tmp, 'out-env'), [], { OPENAI_API_KEY: SERVER_KEY });
      expect(byEnv.code, byEnv.stderr).to.equal(0);
      // A key on the command line works, with a warning that does not repeat it.
      const byFlag = await run(server.url, path.join(tmp, 'out-flag'), ['--api-key', SERVER_KEY]);
      expect(byFlag.code, byFlag.stderr).to.equal(0);
      expect(byFlag.stderr).to.include('prefer --api-key-file');
      // The wrong key and no key: refused (401), said so, the key not repeated.
      const wrong = await run(server.url, path.join(tmp, 'out-wrong'), [
        '--api-key-file',
        path.join(tmp, 'wrong.key'),
      ]);
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.match(/401/);
      const none = await run(server.url, path.join(tmp, 'out-none'), []);
      expect(none.code).to.equal(1);
      results.push(byFile, byEnv, byFlag, wrong, none);
      const args = JSON.parse(
        readFileSync(
          path.join(tmp, 'out-file', 'tiny', 'items-none-guanaco_prompt-s1-k50-p0.9-t0.0-b8.json'),
          'utf8',
        ),
      );
      expect(args.engine_spec).to.equal(`openai:${server.url}`);
    } finally {
      expect(await stop(server.child)).to.equal(0);
    }
    // The server's request log (stderr) recorded the 401s, never a key.
    expect(server.err()).to.include('"status":401');
    const texts: Record<string, string> = { 'serve stdout': server.out(), 'serve stderr': server.err() };
    results.forEach((r, i) => {
      texts[`run ${i} stdout`] = r.stdout;
      texts[`run ${i} stderr`] = r.stderr;
    });
    const searched = expectNoKey([tmp], texts, keyFiles());
    expect(searched).to.be.greaterThan(5);

    // The key from the environment instead of a file.
    const byEnv = await serve(['--model', model, '--backend', 'wasm', '--quiet'], {
      POLYGLOT_SERVE_API_KEY: SERVER_KEY,
    });
    try {
      expect(byEnv.out()).to.include('API key required');
      const unauth = await run(byEnv.url, path.join(tmp, 'out-env-none'), []);
      expect(unauth.code).to.equal(1);
      expectNoKey([], { stdout: unauth.stdout, stderr: unauth.stderr, serve: byEnv.out() + byEnv.err() }, []);
    } finally {
      expect(await stop(byEnv.child)).to.equal(0);
    }
  });

  it('a server that echoes the wrong key (as OpenAI does): the error message redacts it', async () => {
    const echo = http.createServer((req, res) => {
      req.resume();
      const auth = String(req.headers.authorization ?? '');
      const body = JSON.stringify({
        error: {
          message: `Incorrect API key provided: ${auth.replace(/^Bearer /, '')}. You can find your API key at …`,
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      });
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
    try {
      const out = path.join(tmp, 'out-echo');
      const r = await run(url, out, ['--api-key-file', path.join(tmp, 'client.key')]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/^polyglot: error: .*401.*Incorrect API key provided: \[redacted\]/m);
      const debug = await run(url, out, ['--api-key-file', path.join(tmp, 'client.key')], {
        POLYGLOT_DEBUG: '1',
      });
      expect(debug.code).to.equal(1);
      expectNoKey([out], { stdout: r.stdout, stderr: r.stderr, 'debug stderr': debug.stderr }, []);
    } finally {
      await new Promise((r) => echo.close(r));
    }
  });

  it('key flags: a file or the key, not both; an empty or missing file is a usage error naming it', async () => {
    const empty = path.join(tmp, 'empty.key');
    writeFileSync(empty, '\n');
    const both = await polyglot([
      'infer',
      'serve',
      '--model',
      model,
      '--api-key',
      SERVER_KEY,
      '--api-key-file',
      path.join(tmp, 'server.key'),
    ]);
    expect(both.code).to.equal(2);
    expect(both.stderr).to.include('give --api-key or --api-key-file, not both');
    const blank = await polyglot(['infer', 'serve', '--model', model, '--api-key-file', empty]);
    expect(blank.code).to.equal(2);
    expect(blank.stderr).to.include(`--api-key-file ${empty}: the first line is empty`);
    const missing = await polyglot([
      'infer',
      'serve',
      '--model',
      model,
      '--api-key-file',
      path.join(tmp, 'nope.key'),
    ]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.include('cannot read it (ENOENT)');
    const timeouts = await polyglot(['infer', 'serve', '--model', model, '--headers-timeout', '40']);
    expect(timeouts.code).to.equal(2);
    expect(timeouts.stderr).to.include('--headers-timeout must not exceed --request-timeout');
    const local = await run('x', path.join(tmp, 'out-local'), [
      '--api-key-file',
      path.join(tmp, 'client.key'),
    ]);
    expect(local.code).to.not.equal(0);
    const localSpec = await polyglot([
      'infer',
      'run',
      '--engine',
      `local:${model}`,
      '--input',
      input,
      '--prompt-template',
      template,
      '--output-dir',
      path.join(tmp, 'out-local'),
      '--api-key-file',
      path.join(tmp, 'client.key'),
    ]);
    expect(localSpec.code).to.equal(2);
    expect(localSpec.stderr).to.include('--api-key(-file) are for openai: engines');
    for (const r of [both, blank, missing, timeouts, local, localSpec]) {
      expectNoKey([], { stdout: r.stdout, stderr: r.stderr }, []);
    }
  });

  it('engine specs are written down without URL credentials or key parameters', () => {
    expect(shownEngineSpec('local:models/x')).to.equal('local:models/x');
    expect(shownEngineSpec('openai:http://gpu1:8000,http://gpu2:8000/v1')).to.equal(
      'openai:http://gpu1:8000,http://gpu2:8000/v1',
    );
    expect(
      shownEngineSpec(`openai:https://bob:${MARK}@gpu1:8000/v1,http://gpu2:8000/v1?api-key=${MARK}`),
    ).to.equal('openai:https://gpu1:8000/v1,http://gpu2:8000/v1?api-key=%5Bredacted%5D');
  });

  describe('judge', () => {
    let judge: JudgeServer;
    before(async () => {
      judge = await startJudgeServer(jsonAnswer());
    });
    after(async () => {
      await judge?.close();
    });

    it('judge run --api-key-file: outputs, the SQLite cache and messages never hold the key', async () => {
      const dir = path.join(tmp, 'judge');
      const cache = path.join(dir, 'cache', 'cache.sqlite');
      const responses = path.join(tmp, 'responses.jsonl');
      writeFileSync(
        responses,
        [0, 1, 2].map((i) => `${JSON.stringify({ source: `Task ${i}`, system: `answer ${i}` })}\n`).join(''),
      );
      const base = ['judge', 'run', '--input', responses, '--endpoint', judge.url, '--model', 'judge-1'];
      const ok = await polyglot([
        ...base,
        '--output-dir',
        dir,
        '--cache',
        cache,
        '--api-key-file',
        path.join(tmp, 'client.key'),
      ]);
      expect(ok.code, ok.stderr).to.equal(0);
      expect(judge.chat()[0]!.headers.authorization).to.equal(`Bearer ${CLIENT_KEY}`);
      judge.setScript((req) => ({
        status: 401,
        body: {
          error: {
            message: `Incorrect API key provided: ${String(req.headers.authorization).slice(7)}`,
            type: 'invalid_request_error',
          },
        },
      }));
      const bad = await polyglot(
        [
          ...base,
          '--model',
          'judge-2',
          '--output-dir',
          path.join(dir, 'bad'),
          '--cache',
          cache,
          '--api-key-env',
          'MY_JUDGE_KEY',
        ],
        { MY_JUDGE_KEY: WRONG_KEY },
      );
      expect(bad.code).to.equal(1);
      expect(bad.stderr, bad.stderr).to.match(/^polyglot: error: judge endpoint .*401 .*--api-key-env/m);
      expectNoKey(
        [dir],
        {
          'ok stdout': ok.stdout,
          'ok stderr': ok.stderr,
          'bad stdout': bad.stdout,
          'bad stderr': bad.stderr,
        },
        [],
      );
      expect(filesUnder(dir).some((f) => f.endsWith('cache.sqlite'))).to.equal(true);
    });
  });
});
