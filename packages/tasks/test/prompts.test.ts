import { readJsonOrJsonl } from '@polyglot/data';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  GUANACO_PROMPT,
  readSquad,
  renderPrompt,
  type TaskContext,
  taskVariants,
  XCSQA_PROMPTS,
  XQUAD_PROMPTS,
  xcsqaInstruction,
  xcsqaTask,
  xquadTask,
} from '../src/index.js';

const ctx = (dataDir = '/nonexistent'): TaskContext => ({ dataDir, options: {} });

describe('prompt templates', () => {
  it("render the paper's English X-CSQA prompts character for character", async function () {
    const file = sharedPath(this, 'data', 'paper-samples', 'xcsqa', 'xcsqa_dev_en_en.head.json');
    const rows = await readJsonOrJsonl<{ instruction: string; question: string; options: string[] }>(file);
    expect(rows).to.have.length(5);
    const [variant] = taskVariants(xcsqaTask, ['en']);
    for (const r of rows) {
      expect(renderPrompt(xcsqaInstruction(XCSQA_PROMPTS.en!, r.question, r.options), '"')).to.equal(
        r.instruction,
      );
      const req = xcsqaTask.buildRequest({ ...r, id: 'x', answer: 'A' }, variant!, ctx(), 0);
      expect(req).to.deep.include({ type: 'generate_until', prompt: r.instruction });
    }
  });

  it("render the paper's English-prompt, German-passage XQuAD prompts from the real XQuAD data", async function () {
    const sample = sharedPath(this, 'data', 'paper-samples', 'xquad', 'xquad_dev_en_de.head.json');
    const docs = await readSquad(sharedPath(this, 'data', 'xquad', 'xquad.de.json'));
    const rows = await readJsonOrJsonl<{ instruction: string; answer: string }>(sample);
    const [variant] = taskVariants(xquadTask, ['en:de']);
    expect(variant).to.deep.equal({ task: 'xquad', name: 'xquad_en_de', lang: 'de', promptLang: 'en' });
    for (const r of rows) {
      const doc = docs.find((d) => r.instruction.includes(`\n\nQuestion:\n\n${d.question}\n\n`));
      expect(doc, r.answer).to.not.equal(undefined);
      expect(doc!.answers).to.include(r.answer);
      const req = xquadTask.buildRequest(doc!, variant!, ctx(), 0);
      expect(req.type === 'generate_until' && req.prompt).to.equal(r.instruction);
    }
  });

  it('have every part in every prompt language, in the language (not English)', () => {
    expect(Object.keys(XQUAD_PROMPTS).sort()).to.deep.equal(Object.keys(XCSQA_PROMPTS).sort());
    for (const [lang, p] of Object.entries(XQUAD_PROMPTS)) {
      for (const v of Object.values(p)) expect(v, lang).to.be.a('string').and.not.equal('');
      expect(p.answerPrefix.endsWith('"'), lang).to.equal(true);
      if (lang !== 'en') expect(p.intro, lang).to.not.equal(XQUAD_PROMPTS.en!.intro);
    }
    for (const [lang, p] of Object.entries(XCSQA_PROMPTS)) {
      expect(p.intro, lang).to.match(/"A".*"B".*"C".*"D".*"E"/u);
      if (lang !== 'en') expect(p.question, lang).to.not.equal('Question:');
    }
  });

  it("use the paper's guanaco chat template (no space before the second ###)", () => {
    expect(GUANACO_PROMPT).to.equal('### Human: {{ instruction }}### Assistant:');
    expect(renderPrompt('Hi?')).to.equal('### Human: Hi?### Assistant:');
    expect(renderPrompt('Hi?', '"')).to.equal('### Human: Hi?### Assistant: "');
    expect(renderPrompt('Hi?', '', '<s>[INST] {{ instruction }} [/INST]')).to.equal('<s>[INST] Hi? [/INST]');
  });
});
