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

/** A request that cannot run (empty or too long prompt, token ids outside the vocabulary, bad parameters). */
export class RequestError extends InferError {
  /** Index of the request in the call. */
  readonly request: number;
  /** The message without the `request N: ` prefix (callers that know a better place, e.g. file:line, use it). */
  readonly detail: string;
  constructor(request: number, code: string, detail: string, options?: { cause?: unknown }) {
    super(code, `request ${request}: ${detail}`, options);
    this.name = 'RequestError';
    this.request = request;
    this.detail = detail;
  }
}
