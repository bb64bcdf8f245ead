import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
  banner: { js: '#!/usr/bin/env node' },
  // The embedded defaults of `polyglot reproduce` (the demo data, MIT, written for this project) ship with the
  // package as dist/data/demo, where the pipeline finds them from dist/index.js as it does in a checkout.
  async onSuccess() {
    cpSync('../../data/demo', 'dist/data/demo', { recursive: true });
  },
});
