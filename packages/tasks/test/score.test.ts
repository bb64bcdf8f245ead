import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readJsonOrJsonl } from '@polyglot/data';
import type { Engine, GenerateRequest, GenerateResult, LoglikelihoodRequest } from '@polyglot/infer';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  chatTask,
  isPolyglotError,
  runTasks,
  scoreFiles,
  TaskRegistry,
  taskVariants,
  variantFromFileName,
  xcsqaTask,
  xquadTask,
} from '../src/index.js';
import { writeTaskData } from './helpers.js';

/** An engine that answers from a table: what the runner does is then known exactly. */
function fakeEngine(answer: (prompt: string, i: number) => string): Engine {
  let calls = 0;
  return {
    info: { kind: 'fake', model: 'fake-model', backend: null },
    async generate(reqs: GenerateRequest[]): Promise<GenerateResult[]> {
      return reqs.map((r) => ({
        inputIds: [],
        outputIds: [],
        text: answer(r.prompt ?? '', calls++),
        finishReason: 'stop',
        stopReason: null,
        seed: r.params?.seed ?? 0,
      }));
    },
    async score() {
      return [];
    },
    async loglikelihood(reqs: LoglikelihoodRequest[]) {
      // The shortest continuation wins.
      return reqs.map((r) => ({ logprob: -(r.continuation ?? '').length, isGreedy: false, tokens: 1 }));
    },
    async close() {},
  };
}

describe('scoring existing run files', () => {
  let tmp: string;
  let dataDir: string;
  before(function () {
    tmp = mkdtempSync(path.join(tmpdir(), 'polyglot-score-'));
    dataDir = writeTaskData(path.join(tmp, 'data'), {
      xquad: sharedPath(this, 'data', 'xquad'),
      alpacaIs: sharedPath(
        this,
        'data',
        'paper-samples',
        'alpaca_eval',
        'alpaca_eval_instructions_is.head.json',
      ),
    });
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('rescoring the samples files of a run gives its results (generation and log-likelihood tasks)', async () => {
    const out = path.join(tmp, 'run');
    // Every other XQuAD response quotes the answer; X-CSQA answers "B".
    const engine = fakeEngine((prompt, i) => {
      if (prompt.includes('Basierend auf dem Text')) return i % 2 === 0 ? '308" Punkte.' : 'keine Ahnung';
      return 'B"';
    });
    const registry = TaskRegistry.withBuiltins();
    const results = await runTasks({
      tasks: registry.resolve(['xquad', 'xcsqa', 'xnli'], ['de']),
      engine,
      outputDir: out,
      dataDir,
      limit: 3,
      seeds: [0, 1],
    });
    expect(results.results.xcsqa_de!['acc,none']).to.be.closeTo(1 / 3, 1e-12);
    expect(results.config).to.deep.include({ engine: 'fake:fake-model', backend: null });
    for (const [name, variant] of [
      ['xquad', 'xquad_de'],
      ['xcsqa', 'xcsqa_de'],
      ['xnli', 'xnli_de'],
    ] as const) {
      const task = registry.get(name)!;
      const { outcome, records } = await scoreFiles({
        task,
        inputs: [path.join(out, `samples_${variant}.jsonl`)],
        dataDir,
      });
      expect(outcome.variant.name).to.equal(variant);
      const again = Object.fromEntries(outcome.summaries.map((s) => [s.key, s.value]));
      for (const [k, v] of Object.entries(again)) expect(results.results[variant]![k], k).to.equal(v);
      expect(records.length).to.equal(name === 'xnli' ? 3 : 6);
    }
  });

  it("scores the paper's XQuAD run files, matching documents by their fields", async function () {
    const sample = sharedPath(this, 'data', 'paper-samples', 'xquad', 'xquad_dev_en_de.head.json');
    const rows = await readJsonOrJsonl<{ instruction: string; answer: string }>(sample);
    const file = path.join(tmp, 'xquad_dev_en_de-none-guanaco_prompt-s0-k50-p0.9-t0.001-b8.jsonl');
    // The paper's inference writes {prompt, system, finish_reason, source, secs, reference}.
    const responses = rows.map((r, i) => (i < 3 ? `${r.answer}" ist die Antwort.` : 'Ich weiß es nicht.'));
    writeFileSync(
      file,
      rows
        .map((r, i) =>
          JSON.stringify({
            prompt: r.instruction,
            system: responses[i],
            finish_reason: 'stop',
            source: r.instruction,
            secs: 0.1,
            reference: r.answer,
          }),
        )
        .join('\n'),
    );
    expect(variantFromFileName(xquadTask, file)).to.deep.equal({
      task: 'xquad',
      name: 'xquad_en_de',
      lang: 'de',
      promptLang: 'en',
    });
    const { outcome, records } = await scoreFiles({ task: xquadTask, inputs: [file] });
    const values = Object.fromEntries(outcome.summaries.map((s) => [s.key, s.value]));
    expect(values).to.deep.equal({ 'containment,none': 0.6, 'exact_match,none': 0.6, 'f1,none': 0.6 });
    expect(records[0]!.seed).to.equal(0);
    // The question was read back from the prompt (for the echo rule).
    expect((records[0]!.doc as { question: string }).question).to.equal(
      'Wie viele Punkte gab die Verteidigung der Panthers ab?',
    );
  });

  it("scores the paper's X-CSQA files (letters read from the responses) and chat files (language fidelity)", async function () {
    const xc = await readJsonOrJsonl<{ instruction: string; answer: [string, string] }>(
      sharedPath(this, 'data', 'paper-samples', 'xcsqa', 'xcsqa_dev_en_en.head.json'),
    );
    const xfile = path.join(tmp, 'xcsqa_dev_en_en-none-guanaco_prompt-s42-k50-p0.9-t0.001-b8.jsonl');
    const said = ['C"', `${xc[1]!.answer[1]} is where`, 'A"', ' **B**', 'I do not know'];
    writeFileSync(
      xfile,
      xc
        .map((r, i) =>
          JSON.stringify({
            prompt: r.instruction,
            system: said[i],
            source: r.instruction,
            reference: r.answer,
          }),
        )
        .join('\n'),
    );
    const xs = await scoreFiles({ task: xcsqaTask, inputs: [xfile] });
    expect(xs.outcome.variant.name).to.equal('xcsqa_en');
    expect(xs.records.map((r) => r.filtered_response)).to.deep.equal(['C', 'E', 'A', 'B', null]);
    expect(xs.records.map((r) => r.scores['acc,none'])).to.deep.equal([1, 1, 0, 1, 0]);

    const is = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const instr = (await readJsonOrJsonl<{ instruction: string }>(is)).slice(0, 4);
    const cfile = path.join(
      tmp,
      'alpaca_eval_instructions_is-none-guanaco_prompt-s723-k50-p0.9-t0.8-b8.jsonl',
    );
    const replies = [
      'Margir þekktir leikarar hófu feril sinn á Broadway, til dæmis Hugh Jackman og Meryl Streep.',
      'The names of the states come from many sources, such as Native American languages.',
      'Körfubolti er spilaður af tveimur liðum með fimm leikmönnum hvort, og markmiðið er að skora körfur.',
      '',
    ];
    writeFileSync(
      cfile,
      instr
        .map((r, i) =>
          JSON.stringify({
            prompt: `### Human: ${r.instruction}### Assistant:`,
            system: replies[i],
            source: r.instruction,
          }),
        )
        .join('\n'),
    );
    const cs = await scoreFiles({ task: chatTask, inputs: [cfile] });
    expect(cs.outcome.variant.name).to.equal('chat_is');
    expect(cs.records.map((r) => r.scores['lang_match,none'])).to.deep.equal([1, 0, 1, 0]);
    expect(cs.records.map((r) => r.scores['tgt_lang,none'])).to.deep.equal([1, 0, 1, 0]);
    expect(cs.records[0]!.seed).to.equal(723);
  });

  it('matches foreign lines without their document to the data, line by line, and says what is missing', async () => {
    const file = path.join(tmp, 'plain.jsonl');
    writeFileSync(file, [{ output: '308' }, { output: 'x' }].map((r) => JSON.stringify(r)).join('\n'));
    const [variant] = taskVariants(xquadTask, ['de']);
    const r = await scoreFiles({ task: xquadTask, variant, inputs: [file], dataDir });
    expect(r.records.map((x) => x.scores['exact_match,none'])).to.deep.equal([1, 0]);
    try {
      await scoreFiles({ task: xquadTask, inputs: [file], dataDir });
      throw new Error('expected an error');
    } catch (e) {
      expect(isPolyglotError(e)).to.equal(true);
      expect((e as Error).message).to.include('--langs');
    }
    writeFileSync(file, JSON.stringify({ answer_text: 'x' }));
    try {
      await scoreFiles({ task: xquadTask, variant, inputs: [file], dataDir });
      throw new Error('expected an error');
    } catch (e) {
      expect((e as Error).message).to.match(/plain\.jsonl:1: no response .*--response-key/);
    }
  });
});
