import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import {
  DataError,
  PAPER_PROMPT_TEMPLATE,
  type PromptInput,
  readJsonlAll,
  renderFile,
  renderPaperPrompt,
  renderRecord,
  renderRecords,
} from '../src/index.js';
import { rejectsWith, tempDir } from './helpers/util.js';

const paper = ({ instruction }: PromptInput) => renderPaperPrompt(instruction!);

describe('rendering prompts from records', () => {
  it("the paper's template matches data/prompts/guanaco_prompt.txt", async function () {
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt'), 'utf8')).to.equal(
      PAPER_PROMPT_TEMPLATE,
    );
    expect(renderPaperPrompt('Wie spät ist es?')).to.equal('### Human: Wie spät ist es?### Assistant:');
  });

  it('keeps the quotes of translated prompts (as the paper did) or strips them', async function () {
    const file = sharedPath(
      this,
      'data',
      'paper-samples',
      'alpaca_eval',
      'alpaca_eval_instructions_is.head.json',
    );
    const kept = [];
    for await (const r of renderRecords(file, { render: paper })) kept.push(r);
    expect(kept[0]!.prompt).to.equal(
      '### Human: "Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?"### Assistant:',
    );
    const stripped = [];
    for await (const r of renderRecords(file, { render: paper, quotes: 'strip', outField: 'text' }))
      stripped.push(r);
    expect(stripped[0]!.text).to.equal(
      '### Human: Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?### Assistant:',
    );
    expect(stripped[0]!.instruction).to.equal(
      'Hvað eru nöfn nokkurra þekktra leikara sem hófu feril sinn á Broadway?',
    );
  });

  it('conversation mode hands the renderer Guanaco turns or message arrays', () => {
    const seen: PromptInput[] = [];
    const render = (i: PromptInput) => {
      seen.push(i);
      return i.messages!.map((m) => `<${m.role}>${m.content}`).join('');
    };
    const a = renderRecord(
      { text: '### Human: Hi### Assistant: Hello' },
      { render, conversationField: 'text' },
    );
    expect(a.prompt).to.equal('<user>Hi<assistant>Hello');
    const b = renderRecord(
      {
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: 'U' },
        ],
      },
      { render, messagesField: 'messages' },
    );
    expect(b.prompt).to.equal('<system>S<user>U');
    expect(() => renderRecord({ messages: [] }, { render, messagesField: 'messages' }, 'f.jsonl:3')).to.throw(
      DataError,
      /f\.jsonl:3/,
    );
  });

  it('errors name file:line, including a renderer’s own typed errors', async () => {
    const dir = tempDir('render');
    const input = path.join(dir, 'in.jsonl');
    writeFileSync(input, `${JSON.stringify({ instruction: 'a' })}\n${JSON.stringify({ question: 'b' })}\n`);
    await rejectsWith(
      renderFile(input, path.join(dir, 'out.jsonl'), { render: paper }),
      'missing-field',
      `${input}:2`,
      '--field',
    );
    const typed = () => {
      throw Object.assign(new Error('undefined variable "system"'), {
        isPolyglotError: true,
        code: 'TEMPLATE_UNDEFINED',
      });
    };
    await rejectsWith(
      renderFile(input, path.join(dir, 'out.jsonl'), { render: typed }),
      'TEMPLATE_UNDEFINED',
      `${input}:1`,
      '"system"',
    );
    writeFileSync(input, `${JSON.stringify({ q: '"Q?"' })}\n`);
    expect(
      await renderFile(input, path.join(dir, 'out.jsonl'), { render: paper, field: 'q', quotes: 'strip' }),
    ).to.equal(1);
    expect(await readJsonlAll(path.join(dir, 'out.jsonl'))).to.deep.equal([
      { q: 'Q?', prompt: '### Human: Q?### Assistant:' },
    ]);
  });
});
