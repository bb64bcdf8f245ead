import { SftError } from './errors.js';

/**
 * `torch.nn.utils.clip_grad_norm_` with the L2 norm: the total norm over all gradients (the norm of the
 * per-tensor norms), then every gradient is multiplied in place by min(1, maxNorm / (total + 1e-6)).
 * Returns the total norm before clipping (what the Trainer logs as `grad_norm`). With a non-finite total,
 * torch's arithmetic goes on (gradients become NaN or 0) unless `errorIfNonfinite`, which throws instead.
 */
export function clipGradNorm(
  grads: readonly Float32Array[],
  maxNorm: number,
  options: { errorIfNonfinite?: boolean } = {},
): number {
  if (!(maxNorm >= 0)) throw new SftError('SFT_BAD_ARG', `maxNorm must be non-negative, got ${maxNorm}`);
  let sumSq = 0;
  for (const g of grads) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    sumSq += s;
  }
  const total = Math.sqrt(sumSq);
  if (options.errorIfNonfinite && !Number.isFinite(total)) {
    throw new SftError(
      'SFT_NONFINITE_GRAD',
      `the total norm of the gradients is ${total}; the loss or a gradient overflowed (lower the learning rate or check the data)`,
    );
  }
  const coef = Math.min(maxNorm / (total + 1e-6), 1);
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i] * coef;
  return total;
}
