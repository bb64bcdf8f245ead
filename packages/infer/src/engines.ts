import { GGUF_DTYPES, type GgufDtype } from '@polyglot/model';
import type { Engine } from './engine.js';
import { InferError } from './errors.js';
import { LlamaCppEngine, type LlamaCppEngineOptions } from './llamacpp-engine.js';
import { LocalEngine, type LocalEngineOptions } from './local-engine.js';
import { RemoteEngine, type RemoteEngineOptions } from './remote-engine.js';

/**
 * An engine named by a spec: `local:DIR` (a model directory), `openai:URL[,URL…]` (OpenAI-compatible servers) or
 * `llamacpp:PATH[?dtype=f32|f16|q8_0]` (llama.cpp through node-llama-cpp: a GGUF file, or a model directory exported
 * to a cached GGUF of that dtype, default f16).
 */
export type EngineSpec =
  | { kind: 'local'; dir: string }
  | { kind: 'openai'; urls: string[] }
  | { kind: 'llamacpp'; path: string; dtype?: GgufDtype };

/**
 * Parses `local:DIR` / `openai:URL1,URL2,…` / `llamacpp:PATH[?dtype=…]` (a bare directory counts as local; `NAME:` of
 * another engine is an error).
 */
export function parseEngineSpec(spec: string): EngineSpec {
  const m = /^([a-z]+):(.*)$/s.exec(spec);
  if (m && m[1] === 'llamacpp') {
    const q = /^(.*)\?dtype=([a-z0-9_]+)$/s.exec(m[2]);
    const file = q ? q[1] : m[2];
    if (file === '') {
      throw new InferError(
        'ENGINE_SPEC',
        `${spec}: give a GGUF file or a model directory, e.g. llamacpp:model.gguf or llamacpp:models/llama?dtype=f32`,
      );
    }
    if (q && !(GGUF_DTYPES as readonly string[]).includes(q[2])) {
      throw new InferError(
        'ENGINE_SPEC',
        `${spec}: dtype must be one of ${GGUF_DTYPES.join(', ')}, got ${q[2]}`,
      );
    }
    return q ? { kind: 'llamacpp', path: file, dtype: q[2] as GgufDtype } : { kind: 'llamacpp', path: file };
  }
  if (m && m[1] === 'openai') {
    const urls = m[2]
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== '');
    if (urls.length === 0) {
      throw new InferError(
        'ENGINE_SPEC',
        `${spec}: give at least one URL, e.g. openai:http://localhost:8000`,
      );
    }
    return { kind: 'openai', urls };
  }
  if (m && m[1] === 'local') {
    if (m[2] === '')
      throw new InferError('ENGINE_SPEC', `${spec}: give the model directory, e.g. local:models/llama`);
    return { kind: 'local', dir: m[2] };
  }
  if (m && m[1].length > 1) {
    throw new InferError(
      'ENGINE_SPEC',
      `${spec}: unknown engine "${m[1]}"; use local:DIR, openai:URL[,URL…] or llamacpp:FILE.gguf`,
    );
  }
  return { kind: 'local', dir: spec };
}

/** Opens the engine a spec names; `local`, `openai` and `llamacpp` hold the options of each kind. */
export async function openEngine(
  spec: string | EngineSpec,
  opts: {
    local?: Omit<LocalEngineOptions, 'model'>;
    openai?: Omit<RemoteEngineOptions, 'endpoints'>;
    llamacpp?: Omit<LlamaCppEngineOptions, 'model'>;
  } = {},
): Promise<Engine & { readonly info: Engine['info'] }> {
  const s = typeof spec === 'string' ? parseEngineSpec(spec) : spec;
  if (s.kind === 'local') return LocalEngine.load({ ...opts.local, model: s.dir });
  if (s.kind === 'llamacpp') {
    return LlamaCppEngine.load({ ...opts.llamacpp, ...(s.dtype ? { dtype: s.dtype } : {}), model: s.path });
  }
  return RemoteEngine.connect({ ...opts.openai, endpoints: s.urls });
}
