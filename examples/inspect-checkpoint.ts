// Read a Hugging Face checkpoint and (optionally) a PEFT adapter with @polyglot/model's public API:
// architecture and parameter count, one tensor, the adapter's modules and scales, the tokenizer, and the
// paper's chat prompt rendered and tokenized.
//   node --import tsx examples/inspect-checkpoint.ts MODEL_DIR [ADAPTER_DIR]
import { builtinTemplate, Checkpoint, readAdapter, renderInstruction, Tokenizer } from '@polyglot/model';

const [modelDir, adapterDir] = process.argv.slice(2);
if (!modelDir) {
  console.error('usage: inspect-checkpoint.ts MODEL_DIR [ADAPTER_DIR]');
  process.exit(2);
}

const ckpt = await Checkpoint.open(modelDir);
const c = ckpt.config;
console.log(
  `${c.architectures.join(',')}: ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ` +
    `${c.numAttentionHeads} heads / ${c.numKeyValueHeads} kv heads, vocab ${c.vocabSize}`,
);
console.log(`parameters: ${ckpt.parameterCount().toLocaleString('en-US')} in ${ckpt.shards.length} shard(s)`);
const norm = await ckpt.readFloat32('model.norm.weight');
console.log(`model.norm.weight[0..3] = ${Array.from(norm.subarray(0, 4), (v) => v.toFixed(4)).join(', ')}`);
await ckpt.close();

if (adapterDir) {
  const adapter = await readAdapter(adapterDir);
  const scales = [...new Set(adapter.modules.map((m) => m.scale))];
  console.log(
    `adapter: r ${adapter.config.r}, alpha ${adapter.config.loraAlpha}, ${adapter.modules.length} modules, scale ${scales.join('/')}`,
  );
}

const tok = await Tokenizer.fromDir(modelDir);
const prompt = renderInstruction(builtinTemplate('guanaco'), 'Wie spät ist es?');
const ids = tok.encode(prompt);
console.log(`prompt ${JSON.stringify(prompt)} → ${ids.length} tokens: ${ids.slice(0, 12).join(' ')} …`);
