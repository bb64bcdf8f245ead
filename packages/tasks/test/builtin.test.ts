import { expect } from 'chai';
import {
  chatTask,
  sampleIndices,
  type TaskContext,
  taskVariants,
  xcsqaMcTask,
  xnliChoices,
  xnliTask,
  xquadAnswerSpan,
  xquadTask,
} from '../src/index.js';

const ctx = (options: Record<string, unknown> = {}): TaskContext => ({ dataDir: '/nonexistent', options });

describe('built-in tasks: requests and scoring rules', () => {
  it('XQuAD: the answer span for exact match and F1 ends at the closing quote', () => {
    expect(xquadAnswerSpan('308" Punkte gab sie ab.')).to.equal('308');
    expect(xquadAnswerSpan(' „Kawann Short“, der …')).to.equal('Kawann Short');
    expect(xquadAnswerSpan('Die Antwort ist: 5½ Sacks\nmehr')).to.equal('5½ Sacks');
    // An apostrophe does not end the span (cleaning then drops it, as the SQuAD normalisation would).
    expect(xquadAnswerSpan("Jared Allen's 136")).to.equal('Jared Allens 136');
    const [v] = taskVariants(xquadTask, ['zh']);
    const doc = { id: 'q', context: '…', question: '多少分？', answers: ['308分'] };
    const r = xquadTask.process(doc, { type: 'generate_until', text: '308分"。' }, v!, ctx());
    expect((r as { scores: unknown }).scores).to.deep.equal({
      'containment,none': 1,
      'exact_match,none': 1,
      'f1,none': 1,
    });
    const partial = xquadTask.process(doc, { type: 'generate_until', text: '308"' }, v!, ctx());
    expect((partial as { scores: Record<string, number> }).scores['f1,none']).to.be.closeTo(2 / 3, 1e-12);
  });

  it("XNLI: lm-evaluation-harness's sentences, per-language words, empty context", () => {
    const doc = { premise: 'Il pleut', hypothesis: 'Le sol est mouillé' };
    expect(xnliChoices(doc, 'fr')).to.deep.equal([
      'Il pleut, correct? Oui, Le sol est mouillé',
      'Il pleut, correct? Aussi, Le sol est mouillé',
      'Il pleut, correct? Non, Le sol est mouillé',
    ]);
    const [v] = taskVariants(xnliTask, ['zh']);
    const req = xnliTask.buildRequest({ id: '0', premise: 'A', hypothesis: 'B', label: 0 }, v!, ctx(), 0);
    expect(req).to.deep.equal({
      type: 'multiple_choice',
      context: '',
      choices: [' A, 正确? 是的, B', ' A, 正确? 所以, B', ' A, 正确? 不是的, B'],
    });
  });

  it('X-CSQA by log-likelihood: the letters after the opening quote, or the options’ texts', () => {
    const [v] = taskVariants(xcsqaMcTask, ['en']);
    const doc = { id: 'q', question: 'Where?', options: ['a town', 'b', 'c', 'd', 'e'], answer: 'A' };
    const letters = xcsqaMcTask.buildRequest(doc, v!, ctx(), 0);
    expect(letters.type === 'multiple_choice' && letters.context.endsWith('### Assistant: "')).to.equal(true);
    expect(letters.type === 'multiple_choice' && letters.choices).to.deep.equal(['A', 'B', 'C', 'D', 'E']);
    const texts = xcsqaMcTask.buildRequest(doc, v!, ctx({ mc_target: 'text' }), 0);
    expect(texts.type === 'multiple_choice' && texts.choices).to.deep.equal(doc.options);
    // acc_norm divides by characters of the option texts: −3/6 beats −1/1.
    const r = xcsqaMcTask.process(
      doc,
      { type: 'multiple_choice', logprobs: [-3, -1, -9, -9, -9], is_greedy: [] },
      v!,
      ctx({ mc_target: 'text' }),
    );
    expect((r as { scores: unknown }).scores).to.deep.equal({ 'acc,none': 0, 'acc_norm,none': 1 });
  });

  it("chat: the paper's prompt (quotes kept unless stripped) and sampling; judged ids are a seeded sample", () => {
    const [v] = taskVariants(chatTask, ['is']);
    const req = chatTask.buildRequest({ id: '0', instruction: '"Halló?"' }, v!, ctx(), 0);
    expect(req).to.deep.include({ type: 'generate_until', prompt: '### Human: "Halló?"### Assistant:' });
    expect(req.type === 'generate_until' && req.params).to.deep.include({
      temperature: 0.8,
      top_p: 0.9,
      top_k: 50,
      frequency_penalty: 0.2,
      max_tokens: 1024,
      stop: ['### Human:', '### Assistant:', '### Human', '### Assistant'],
    });
    const s = sampleIndices(805, 300);
    expect(s).to.have.length(300);
    expect(new Set(s).size).to.equal(300);
    expect(s).to.deep.equal(sampleIndices(805, 300));
    expect(sampleIndices(10, 300)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
