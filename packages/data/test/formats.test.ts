import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  formatGuanaco,
  formatRunFileName,
  hasSurroundingQuotes,
  oasstBestPath,
  parseRunFileName,
  readAlpacaEval,
  readGuanaco,
  readOasstTrees,
  readPaperXcsqa,
  readPaperXquad,
  readRunFile,
  readSquad,
  readXcsqa,
  readXnli,
  readXquad,
  stripSurroundingQuotes,
} from '../src/index.js';
import { rejectsWith, tempDir } from './helpers/util.js';

const XQUAD_LANGS = ['ar', 'de', 'el', 'en', 'es', 'hi', 'ro', 'ru', 'th', 'tr', 'vi', 'zh'];

describe('readers of the paper formats (samples in ../shared)', () => {
  it('Guanaco files: every record of the paper sample parses and formats back', async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'guanaco_test.head.json');
    const recs = [];
    for await (const r of readGuanaco(file)) recs.push(r);
    expect(recs).to.have.length(5);
    expect(recs[0]!).to.include({ lang: 'rus_Cyrl', id: 9846, where: `${file}:1` });
    for (const r of recs) expect(formatGuanaco(r.messages)).to.equal(r.text);
  });

  it('AlpacaEval translations: 25 Icelandic instructions, quotes kept by default or stripped', async function () {
    const file = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const kept = await readAlpacaEval(file);
    expect(kept).to.have.length(25);
    expect(kept[0]!.instruction).to.match(/^"Hvað eru nöfn/);
    expect(kept.filter((x) => hasSurroundingQuotes(x.instruction))).to.have.length(21);
    const stripped = await readAlpacaEval(file, { quotes: 'strip' });
    expect(stripped[0]!.instruction).to.equal(
      'Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?',
    );
    expect(stripped.every((x) => !x.instruction.startsWith('"') && !x.instruction.endsWith('"'))).to.equal(
      true,
    );
    // a trailing newline after the closing quote does not hide the quotes
    expect(stripped[20]!.instruction.endsWith('"')).to.equal(false);
    expect(stripped.map((x) => x.index)).to.deep.equal([...Array(25).keys()]);
  });

  it('X-CSQA prompt files: instruction, answer letter and text, question, options', async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'xcsqa', 'xcsqa_dev_en_en.head.json');
    const items = await readPaperXcsqa(file);
    expect(items).to.have.length(5);
    expect(items[0]!.answer).to.deep.equal({ letter: 'C', text: 'hospital' });
    expect(items[0]!.options).to.have.length(5);
    for (const it of items) {
      expect(it.instruction).to.include(it.question);
      expect(it.instruction.endsWith('### Assistant: "')).to.equal(true);
    }
  });

  it('XQuAD prompt files: instruction and answer', async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'xquad', 'xquad_dev_en_de.head.json');
    const items = await readPaperXquad(file);
    expect(items).to.have.length(5);
    expect(items[0]!.answer).to.equal('308');
    expect(items[0]!.instruction).to.include('Die Verteidigung der Panthers');
  });

  it('XQuAD: all 12 languages, 1,190 questions each, parallel ids, answers at their offsets', async function () {
    const dir = sharedPath(this, 'data', 'xquad');
    let ids: string[] | null = null;
    for (const lang of XQUAD_LANGS) {
      const items = await readXquad(path.join(dir, `xquad.${lang}.json`));
      expect(items, lang).to.have.length(1190);
      const these = items.map((x) => x.id);
      expect(new Set(these).size, lang).to.equal(1190);
      if (ids) expect(these, lang).to.deep.equal(ids);
      ids = these;
      for (const it of items) {
        expect(it.answers.length).to.be.greaterThan(0);
        expect(it.context.length).to.be.greaterThan(0);
      }
    }
    const de = await readXquad(path.join(dir, 'xquad.de.json'));
    expect(de[0]).to.deep.include({
      id: '56beb4343aeaaa14008c925b',
      question: 'Wie viele Punkte gab die Verteidigung der Panthers ab?',
    });
    expect(de[0]!.answers).to.deep.equal([{ text: '308', answer_start: 38 }]);
  });
});

describe('readers of the original formats and their errors', () => {
  const dir = tempDir('formats');
  const at = (name: string, text: string) => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('SQuAD: answer offsets count code points; a misplaced answer and broken JSON name where', async () => {
    const doc = (start: number) =>
      JSON.stringify({
        version: '1.1',
        data: [
          {
            title: 't',
            paragraphs: [
              {
                context: '😀 Emoji before Paris.',
                qas: [{ id: 'q1', question: 'Where?', answers: [{ text: 'Paris', answer_start: start }] }],
              },
            ],
          },
        ],
      });
    expect((await readSquad(at('ok.json', doc(15))))[0]!.answers[0]!.answer_start).to.equal(15);
    await rejectsWith(
      readSquad(at('off.json', doc(3))),
      'bad-answer-span',
      'data[0].paragraphs[0].qas[0].answers[0]',
      'Paris',
    );
    expect(await readSquad(at('off2.json', doc(3)), { checkSpans: false })).to.have.length(1);
    await rejectsWith(
      readSquad(at('broken.json', '{"data": [\n  {"title": x}\n]}')),
      'bad-json',
      'broken.json:2:',
    );
    await rejectsWith(readSquad(at('nodata.json', '{"version": "1.1"}')), 'bad-squad', '(data)');
  });

  it('X-CSQA JSON Lines: options, labels and answers; test items without answers; errors name file:line', async () => {
    const rec = (answerKey?: string) =>
      JSON.stringify({
        id: 'x1',
        lang: 'de',
        question: { stem: 'Wo?', choices: 'ABCDE'.split('').map((label, i) => ({ label, text: `o${i}` })) },
        ...(answerKey === undefined ? {} : { answerKey }),
      });
    const items = await readXcsqa(at('xcsqa.jsonl', `${rec('B')}\n${rec()}\n`));
    expect(items[0]).to.deep.equal({
      id: 'x1',
      lang: 'de',
      question: 'Wo?',
      options: ['o0', 'o1', 'o2', 'o3', 'o4'],
      labels: ['A', 'B', 'C', 'D', 'E'],
      answer: 'B',
    });
    expect(items[1]!.answer).to.equal(null);
    const badKey = at('badkey.jsonl', `${rec('B')}\n${rec('F')}\n`);
    await rejectsWith(readXcsqa(badKey), 'bad-field', `${badKey}:2`, 'answerKey "F"');
    const noStem = at(
      'nostem.jsonl',
      `${JSON.stringify({ id: 1, question: { choices: [{ label: 'A', text: 'a' }] } })}\n`,
    );
    await rejectsWith(readXcsqa(noStem), 'missing-field', `${noStem}:1`, '"stem"');
  });

  it('XNLI: TSV with its header and JSON Lines (original and Hugging Face keys); bad rows name file:line', async () => {
    const header =
      'language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1\tsentence2\tpairID\tgenre';
    const row = (lang: string, label: string, p: string) =>
      `${lang}\t${label}\t(x)\t(y)\t${p}\tHypothese "mit" Anführungszeichen\t${p.length}\tfiction`;
    const tsv = at(
      'xnli.dev.tsv',
      `${header}\n${row('de', 'entailment', 'Prämisse eins')}\r\n${row('bg', 'contradiction', 'Предпоставка')}\n`,
    );
    const items = await readXnli(tsv);
    expect(items).to.have.length(2);
    expect(items[0]).to.deep.equal({
      language: 'de',
      premise: 'Prämisse eins',
      hypothesis: 'Hypothese "mit" Anführungszeichen',
      label: 'entailment',
      labelIndex: 0,
      pairId: '13',
      genre: 'fiction',
    });
    expect((await readXnli(tsv, { languages: ['bg'] })).map((x) => x.label)).to.deep.equal(['contradiction']);
    const short = at('short.tsv', `${header}\n${row('de', 'neutral', 'a')}\nde\tneutral\tonly three\n`);
    await rejectsWith(readXnli(short), 'bad-tsv', `${short}:3`, '3 tab-separated columns, the header has 8');
    const badLabel = at('label.tsv', `${header}\n${row('de', 'maybe', 'a')}\n`);
    await rejectsWith(readXnli(badLabel), 'bad-field', `${badLabel}:2`, '"maybe"');
    await rejectsWith(readXnli(at('nohead.tsv', 'a\tb\n')), 'bad-tsv', 'no "gold_label" column');
    const jsonl = at(
      'xnli.jsonl',
      `${JSON.stringify({ premise: 'P', hypothesis: 'H', label: 2, language: 'fr' })}\n${JSON.stringify({ sentence1: 'S1', sentence2: 'S2', gold_label: 'neutral', language: 'fr' })}\n`,
    );
    expect((await readXnli(jsonl)).map((x) => [x.label, x.premise])).to.deep.equal([
      ['contradiction', 'P'],
      ['neutral', 'S1'],
    ]);
  });

  it('run files: records checked, names parsed and formatted as the paper names them', async () => {
    const name = 'alpaca_eval_instructions_de-none-guanaco_prompt-s42-k50-p0.9-t0.8-b8.jsonl';
    expect(parseRunFileName(`/runs/llama_2_7b_hf_ml2_merged/${name}`)).to.deep.equal({
      testset: 'alpaca_eval_instructions_de',
      context: 'none',
      prompt: 'guanaco_prompt',
      seed: 42,
      topK: 50,
      topP: 0.9,
      temperature: 0.8,
      batch: 8,
      suffix: null,
      ext: 'jsonl',
    });
    expect(
      formatRunFileName({
        testset: 'alpaca_eval_instructions_de',
        prompt: 'guanaco_prompt',
        seed: 42,
        topK: 50,
        topP: 0.9,
        temperature: 0.8,
        batch: 8,
      }),
    ).to.equal(name);
    const judged = parseRunFileName(
      'xquad_dev_en_de-none-guanaco_prompt-s0-k50-p0.9-t0.001-b8-l300-ds42-as42-source-system.jsonl',
    );
    expect(judged).to.include({ temperature: 0.001, suffix: 'l300-ds42-as42-source-system' });
    expect(parseRunFileName('notes.txt')).to.equal(null);
    const f = at(
      name,
      `${JSON.stringify({ prompt: '### Human: Hallo### Assistant:', system: 'Hallo!', finish_reason: 'stop', source: 'Hallo', secs: 0.5 })}\n${JSON.stringify({ prompt: 'p', system: null })}\n`,
    );
    const recs = await readRunFile(f);
    expect(recs.map((r) => r.system)).to.deep.equal(['Hallo!', null]);
    const bad = at(
      'bad-run.jsonl',
      `${JSON.stringify({ prompt: 'p', system: 'ok' })}\n${JSON.stringify({ prompt: 'p', system: 3 })}\n`,
    );
    await rejectsWith(readRunFile(bad), 'bad-field', `${bad}:2`, '"system"');
    await rejectsWith(
      readRunFile(at('noprompt.jsonl', `${JSON.stringify({ system: 'x' })}\n`)),
      'missing-field',
      'noprompt.jsonl:1',
      '"prompt"',
    );
  });

  it('OpenAssistant trees: the best-ranked path, gzip files, errors name file:line', async () => {
    const tree = {
      message_tree_id: 't1',
      prompt: {
        role: 'prompter',
        text: 'Was ist ein Haiku?',
        lang: 'de',
        replies: [
          { role: 'assistant', text: 'Schlechtere Antwort', rank: 1 },
          {
            role: 'assistant',
            text: 'Ein kurzes Gedicht.',
            rank: 0,
            replies: [{ role: 'prompter', text: 'Danke!', replies: [] }],
          },
          { role: 'assistant', text: 'gelöscht', rank: null, deleted: true },
        ],
      },
    };
    const c = oasstBestPath(tree as never)!;
    // a path ending on the user loses that turn
    expect(c.messages.map((m) => m.content)).to.deep.equal(['Was ist ein Haiku?', 'Ein kurzes Gedicht.']);
    expect(c.text).to.equal('### Human: Was ist ein Haiku?### Assistant: Ein kurzes Gedicht.');
    expect(c).to.include({ lang: 'de', treeId: 't1' });
    const lonely = { prompt: { role: 'prompter', text: 'Hallo?', replies: [] } };
    const gz = path.join(dir, 'trees.jsonl.gz');
    writeFileSync(gz, gzipSync(`${JSON.stringify(tree)}\n${JSON.stringify(lonely)}\n`));
    const all = [];
    for await (const x of readOasstTrees(gz)) all.push(x);
    expect(all).to.have.length(1);
    expect(all[0]!.where).to.equal(`${gz}:1`);
    const bad = at('trees.jsonl', `${JSON.stringify(tree)}\n{"prompt": {"role": "bot", "text": "x"}}\n`);
    await rejectsWith(
      (async () => {
        for await (const _ of readOasstTrees(bad)) {
          /* drain */
        }
      })(),
      'bad-oasst',
      `${bad}:2`,
    );
  });

  it('quotes: one wrapping pair is stripped (ASCII, typographic, guillemets), nothing else', () => {
    expect(stripSurroundingQuotes('"Hvað er þetta?"\n')).to.equal('Hvað er þetta?');
    expect(stripSurroundingQuotes('„Wie spät ist es?“')).to.equal('Wie spät ist es?');
    expect(stripSurroundingQuotes('« Bonjour »')).to.equal('Bonjour');
    expect(stripSurroundingQuotes('No quotes here.')).to.equal('No quotes here.');
    expect(stripSurroundingQuotes('Say "hi" to her')).to.equal('Say "hi" to her');
    expect(stripSurroundingQuotes('"')).to.equal('"');
    expect(stripSurroundingQuotes('""')).to.equal('""');
  });
});
