import type { Engine } from './engine.js';
import { InferError } from './errors.js';
import { LocalEngine, type LocalEngineOptions } from './local-engine.js';
import { RemoteEngine, type RemoteEngineOptions } from './remote-engine.js';

/** An engine named by a spec: `local:DIR` (a model directory) or `openai:URL[,URL…]` (OpenAI-compatible servers). */
export type EngineSpec = { kind: 'local'; dir: string } | { kind: 'openai'; urls: string[] };

/** Parses `local:DIR` / `openai:URL1,URL2,…` (a bare directory counts as local; `NAME:` of another engine is an error). */
export function parseEngineSpec(spec: string): EngineSpec {
  const m = /^([a-z]+):(.*)$/s.exec(spec);
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
      `${spec}: unknown engine "${m[1]}"; use local:DIR or openai:URL[,URL…]`,
    );
  }
  return { kind: 'local', dir: spec };
}

/** Opens the engine a spec names; `local` and `openai` hold the options of each kind. */
export async function openEngine(
  spec: string | EngineSpec,
  opts: { local?: Omit<LocalEngineOptions, 'model'>; openai?: Omit<RemoteEngineOptions, 'endpoints'> } = {},
): Promise<Engine & { readonly info: Engine['info'] }> {
  const s = typeof spec === 'string' ? parseEngineSpec(spec) : spec;
  if (s.kind === 'local') return LocalEngine.load({ ...opts.local, model: s.dir });
  return RemoteEngine.connect({ ...opts.openai, endpoints: s.urls });
}
