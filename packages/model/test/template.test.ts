import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sharedPath } from '../../../tools/shared.js';
import { isPolyglotError } from '../src/errors.js';
import {
  BUILTIN_TEMPLATES,
  builtinTemplate,
  type ChatMessage,
  loadTemplate,
  renderChatTemplate,
  renderInstruction,
  renderTemplate,
  strftime,
  templateFromSource,
} from '../src/template.js';

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

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is the capital of Iceland?' },
  { role: 'assistant', content: 'Reykjavík.' },
  { role: 'user', content: 'And of Greece?' },
];
const llama = { bosToken: '<s>', eosToken: '</s>' };

describe('prompt templates', () => {
  describe("the paper's guanaco prompt", () => {
    it('renders the shared guanaco_prompt.txt as `### Human: X### Assistant:`', async function () {
      const file = sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt');
      expect(readFileSync(file, 'utf8').endsWith('\n')).to.equal(false);
      const template = await loadTemplate(file);
      expect(template.kind).to.equal('text');
      expect(renderTemplate(template, { instruction: 'Hvað heitir höfuðborg Íslands?' })).to.equal(
        '### Human: Hvað heitir höfuðborg Íslands?### Assistant:',
      );
      expect(renderInstruction(template, '"Quoted"')).to.equal('### Human: "Quoted"### Assistant:');
    });

    it('the built-in guanaco chat template gives the same prompt', async function () {
      const file = await loadTemplate(sharedPath(this, 'data', 'prompts', 'guanaco_prompt.txt'));
      const builtin = await loadTemplate('guanaco');
      expect(builtin.kind).to.equal('chat');
      for (const instruction of ['X', 'Ποια είναι η πρωτεύουσα;', '  spaced  ']) {
        expect(renderInstruction(builtin, instruction)).to.equal(renderInstruction(file, instruction));
      }
      expect(renderInstruction(builtin, 'X')).to.equal('### Human: X### Assistant:');
    });

    it('renders multi-turn guanaco and refuses a system turn', () => {
      expect(
        renderChatTemplate(builtinTemplate('guanaco'), {
          messages: conversation.slice(1),
          addGenerationPrompt: true,
        }),
      ).to.equal(
        '### Human: What is the capital of Iceland?### Assistant: Reykjavík. ### Human: And of Greece?### Assistant:',
      );
      expectError(
        () => renderChatTemplate(builtinTemplate('guanaco'), { messages: conversation }),
        'TEMPLATE_RAISED',
        /^guanaco: .*not system/,
      );
    });
  });

  describe('built-in chat templates', () => {
    it('llama-2-chat gives the official Llama-2 chat format for a 2-turn conversation', () => {
      expect(
        renderChatTemplate(builtinTemplate('llama-2-chat'), { messages: conversation, ...llama }),
      ).to.equal(
        '<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is the capital of Iceland? [/INST] Reykjavík. </s>' +
          '<s>[INST] And of Greece? [/INST]',
      );
      expect(
        renderChatTemplate(builtinTemplate('llama-2-chat'), { messages: conversation.slice(1), ...llama }),
      ).to.equal(
        '<s>[INST] What is the capital of Iceland? [/INST] Reykjavík. </s><s>[INST] And of Greece? [/INST]',
      );
      // Contents are stripped as in Meta's chat_completion: the system block and the first user turn as one.
      expect(renderInstruction(builtinTemplate('llama-2-chat'), '  Hi \n', llama)).to.equal(
        '<s>[INST] Hi [/INST]',
      );
      expect(
        renderInstruction(builtinTemplate('llama-2-chat'), '  Hi \n', { ...llama, system: ' S' }),
      ).to.equal('<s>[INST] <<SYS>>\n S\n<</SYS>>\n\n  Hi [/INST]');
    });

    it('llama-2-chat raises a typed error when roles do not alternate', () => {
      const messages = [
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ];
      expectError(
        () => renderChatTemplate(builtinTemplate('llama-2-chat'), { messages, ...llama }),
        'TEMPLATE_RAISED',
        /llama-2-chat: Conversation roles must alternate/,
      );
    });

    it('chatml with and without the generation prompt', () => {
      const messages = conversation.slice(0, 2);
      const body =
        '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is the capital of Iceland?<|im_end|>\n';
      expect(renderChatTemplate(builtinTemplate('chatml'), { messages })).to.equal(body);
      expect(
        renderChatTemplate(builtinTemplate('chatml'), { messages, addGenerationPrompt: false }),
      ).to.equal(body);
      expect(renderChatTemplate(builtinTemplate('chatml'), { messages, addGenerationPrompt: true })).to.equal(
        `${body}<|im_start|>assistant\n`,
      );
    });

    it('zephyr equals what the official zephyr-7b-beta template renders', () => {
      // HuggingFaceH4/zephyr-7b-beta's chat_template, whose layout relies on trim_blocks and lstrip_blocks.
      const official =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n" +
        "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n" +
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n" +
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";
      for (const addGenerationPrompt of [false, true]) {
        const context = { messages: conversation, addGenerationPrompt, ...llama };
        const expected = renderChatTemplate(official, context);
        expect(renderChatTemplate(builtinTemplate('zephyr'), context)).to.equal(expected);
      }
      expect(
        renderChatTemplate(official, {
          messages: conversation.slice(1, 2),
          addGenerationPrompt: true,
          ...llama,
        }),
      ).to.equal('<|user|>\nWhat is the capital of Iceland?</s>\n<|assistant|>\n');
    });

    it("alpaca gives Stanford Alpaca's prompt_no_input for one instruction", () => {
      expect(renderInstruction(builtinTemplate('alpaca'), 'Name a colour.')).to.equal(
        'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
          '### Instruction:\nName a colour.\n\n### Response:',
      );
      expect(
        renderChatTemplate(builtinTemplate('alpaca'), {
          messages: conversation,
          addGenerationPrompt: true,
          ...llama,
        }),
      ).to.equal(
        'You are terse.\n\n### Instruction:\nWhat is the capital of Iceland?\n\n### Response:Reykjavík.</s>\n\n' +
          '### Instruction:\nAnd of Greece?\n\n### Response:',
      );
    });

    it('every built-in renders an empty conversation and a single instruction without a tokenizer', () => {
      for (const name of Object.keys(BUILTIN_TEMPLATES) as (keyof typeof BUILTIN_TEMPLATES)[]) {
        const template = builtinTemplate(name);
        expect(renderChatTemplate(template, { messages: [] }), name).to.be.a('string');
        expect(renderInstruction(template, 'XYZ'), name).to.contain('XYZ');
      }
      expect(renderInstruction(builtinTemplate('llama-2-chat'), 'X')).to.equal('[INST] X [/INST]');
    });
  });

  describe('rendering semantics', () => {
    it('raise_exception surfaces as a typed TEMPLATE_RAISED error naming the template', () => {
      expectError(
        () =>
          renderChatTemplate(
            { name: 'mine', source: "{{ raise_exception('no tools here') }}" },
            { messages: [] },
          ),
        'TEMPLATE_RAISED',
        /^mine: no tools here$/,
      );
    });

    it('plain templates are strict: an undefined variable names the template and the variable', () => {
      expectError(
        () =>
          renderTemplate({ name: 'xquad-de.txt', source: '{{ context }}\n{{ question }}' }, { context: 'c' }),
        'TEMPLATE_UNDEFINED',
        /^xquad-de\.txt: undefined variable "question" \(given: context\)/,
      );
      expect(renderTemplate('{{ a }}{{ b }}', { a: 'x' }, { strict: false })).to.equal('x');
      // Variables bound inside the template are fine.
      expect(
        renderTemplate('{% set n = 2 %}{% for i in range(n) %}{{ i }}{{ sep }}{% endfor %}', { sep: ',' }),
      ).to.equal('0,1,');
    });

    it('chat templates print an undefined variable as an empty string, as transformers does', () => {
      expect(
        renderChatTemplate('{{ bos_token }}{{ messages[0].content }}{{ date_string }}', {
          messages: conversation,
        }),
      ).to.equal('You are terse.');
      expect(
        renderChatTemplate('{% if tools is defined %}T{% endif %}{{ messages | length }}', {
          messages: conversation,
        }),
      ).to.equal('4');
    });

    it('trims blocks in chat templates only (plain templates render as jinja2.Template does)', () => {
      const source = '{% if flag %}\n  {% if flag %}\nA\n  {% endif %}\n{% endif %}\nB';
      expect(renderChatTemplate(source, { messages: [], flag: true })).to.equal('A\nB');
      expect(renderTemplate(source, { flag: true })).to.equal('\n  \nA\n  \n\nB');
      // A single trailing newline of the source is dropped, as Jinja does by default.
      expect(renderTemplate('Hi {{ name }}\n', { name: 'Ann' })).to.equal('Hi Ann');
    });

    it('reports a syntax error with the template name', () => {
      expectError(
        () => renderTemplate({ name: 'broken.txt', source: '{% if x %}' }, { x: 1 }),
        'TEMPLATE_SYNTAX',
        /^broken\.txt: /,
      );
      expectError(() => renderChatTemplate('{{ messages[0 }}', { messages: [] }), 'TEMPLATE_SYNTAX');
    });

    it('formats dates as strftime in the C locale, and offers strftime_now', () => {
      const date = new Date(2024, 6, 5, 14, 3, 9);
      expect(strftime(date, '%d %b %Y')).to.equal('05 Jul 2024');
      expect(strftime(date, '%A %B %-d %H:%M:%S %I%p %j %y %%')).to.equal(
        'Friday July %-d 14:03:09 02PM 187 24 %',
      );
      expect(renderChatTemplate('{{ strftime_now("%Y") }}', { messages: [] })).to.equal(
        String(new Date().getFullYear()),
      );
    });
  });

  describe('loading', () => {
    let tmp: string;
    beforeEach(() => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-template-'));
    });
    afterEach(() => rmSync(tmp, { recursive: true, force: true }));

    it('loads a chat template file (reads `messages`) and a text template file', async () => {
      const chatFile = path.join(tmp, 'chat_template.jinja');
      writeFileSync(chatFile, '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}\n');
      const chat = await loadTemplate(chatFile);
      expect(chat).to.deep.include({ kind: 'chat', name: chatFile });
      expect(renderInstruction(chat, 'hi', { system: 'be nice' })).to.equal('[system] be nice\n[user] hi\n');
      const textFile = path.join(tmp, 'prompt.txt');
      writeFileSync(textFile, '{{ system }}: {{ instruction }}');
      const text = await loadTemplate(textFile);
      expect(text.kind).to.equal('text');
      expect(renderInstruction(text, 'hi', { system: 'S' })).to.equal('S: hi');
      expectError(() => renderInstruction(text, 'hi'), 'TEMPLATE_UNDEFINED', /"system"/);
    });

    it('tells a missing file from a built-in name', async () => {
      try {
        await loadTemplate(path.join(tmp, 'nope.txt'));
        expect.fail('expected TEMPLATE_NOT_FOUND');
      } catch (e) {
        expect(isPolyglotError(e)).to.equal(true);
        expect((e as { code: string }).code).to.equal('TEMPLATE_NOT_FOUND');
        expect((e as Error).message).to.match(
          /nope\.txt: no such template file.*guanaco, alpaca, chatml, llama-2-chat, zephyr/,
        );
      }
    });

    it('classifies sources by whether they read `messages`', () => {
      expect(templateFromSource('{{ instruction }}').kind).to.equal('text');
      expect(templateFromSource("{{ messages[0]['content'] }}").kind).to.equal('chat');
      expectError(() => templateFromSource('{{ "unterminated }}', 'bad'), 'TEMPLATE_SYNTAX', /^bad: /);
    });
  });
});
