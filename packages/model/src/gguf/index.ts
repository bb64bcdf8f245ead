export * from './export.js';
export {
  GGML_BLOCK,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlType,
  GgufFileType,
  type GgufTensorSpec,
  type GgufValue,
  GgufValueType,
  type GgufWriteOptions,
  ggmlNbytes,
  gguf,
  writeGguf,
} from './format.js';
export { decodeTensor, dequantizeQ8_0, encodeTensor, Q8_0_BLOCK, quantizeQ8_0 } from './quant.js';
export { type GgufHeader, type GgufMetadataValue, type GgufTensorInfo, readGgufHeader } from './read.js';
export {
  type GgufTokenizerInput,
  type GgufTokenizerMetadata,
  GgufTokenType,
  ggufTokenizerMetadata,
} from './tokenizer.js';
