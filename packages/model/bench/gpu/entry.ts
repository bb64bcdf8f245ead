// Entry of the one-file bundle that scripts/gpu/pack.sh builds for a GPU host without a Node toolchain. Order matters:
// Dawn's globals (navigator.gpu) first, so that @tensorflow/tfjs-backend-webgpu, bundled with the same tfjs-core as
// the model code, registers its backend when it is evaluated; then the bench.
import { installDawn } from './dawn-globals.js';

installDawn();
await import('@tensorflow/tfjs-backend-webgpu');
await import('./webgpu-gpu.js');
