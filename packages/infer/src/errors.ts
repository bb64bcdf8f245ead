import { PolyglotError } from '@polyglot/model';

/** Errors of `@polyglot/infer` that a caller can cause (bad sampling parameters, malformed logits). */
export class InferError extends PolyglotError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InferError';
  }
}

/** A sampling parameter outside its allowed range; `param` is its name as the OpenAI/vLLM API spells it. */
export class SamplingParamError extends InferError {
  readonly param: string;
  constructor(param: string, message: string) {
    super('INFER_BAD_PARAM', `invalid sampling parameter ${param}: ${message}`);
    this.name = 'SamplingParamError';
    this.param = param;
  }
}
