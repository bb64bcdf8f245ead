// An example polyglot task package. `polyglot tasks run --task-package polyglot-task-example --task capitals …`
// imports this module and registers what it exports: `tasks` (task definitions written in JavaScript) and
// `includePaths` (folders of lm-evaluation-harness YAML tasks).
import { fileURLToPath } from 'node:url';
import { defineTask, exactMatch, f1Score, readJsonOrJsonl, renderPrompt } from '@polyglot/tasks';

const DATA = fileURLToPath(new URL('./data/capitals.jsonl', import.meta.url));

const PARAMS = { temperature: 0, max_tokens: 16, stop: ['\n', '### Human:', '### Assistant:'] };

/** The first line of a response, without quotes and a final full stop: the city it names. */
function cityOf(text) {
  return text
    .split('\n')[0]
    .replace(/["“”„«»]/g, '')
    .replace(/[.。]\s*$/, '')
    .trim();
}

/** Capitals: "What is the capital of X?" in English, German and Icelandic, answered in the question's language. */
export const capitals = defineTask({
  name: 'capitals',
  version: '1.0',
  description:
    'Capital cities asked in English, German and Icelandic; SQuAD exact match and F1 on the first line',
  outputType: 'generate_until',
  languages: ['de', 'en', 'is'],
  generation: { params: PARAMS, seeds: [0] },
  metrics: [
    { name: 'exact_match', description: 'the first line names the capital (SQuAD normalisation)' },
    { name: 'f1', description: 'SQuAD token F1 of the first line' },
  ],
  dataHelp: 'The data ships with the package (data/capitals.jsonl).',
  async loadDocs(variant) {
    const rows = await readJsonOrJsonl(DATA);
    return rows.filter((r) => r.lang === variant.lang);
  },
  docId: (doc) => doc.id,
  target: (doc) => doc.answer,
  buildRequest(doc) {
    return { type: 'generate_until', prompt: renderPrompt(doc.question), params: PARAMS };
  },
  process(doc, response, variant) {
    const city = cityOf(response.text);
    return {
      filtered: { none: city },
      scores: {
        'exact_match,none': exactMatch(city, doc.answer, variant.lang),
        'f1,none': f1Score(city, doc.answer, variant.lang),
      },
    };
  },
});

export const tasks = [capitals];

export const includePaths = [fileURLToPath(new URL('./yaml', import.meta.url))];
