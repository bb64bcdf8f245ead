// Installs Dawn (the `webgpu` package, kept external to the bundle: it loads its native dawn.node beside its own
// index.js) as navigator.gpu, as packages/model/src/llama/backend.ts does for an unbundled install.
import { create, globals } from 'webgpu';

export function installDawn(): void {
  Object.assign(globalThis, globals);
  const gpu = create([]);
  const g = globalThis as unknown as { navigator?: object };
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}
