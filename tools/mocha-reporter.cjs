// Mocha reporter used by every package: the spec reporter's output, plus a JSON file of counts that
// scripts/run-tests.mjs sums into the final "N passed, N failed" line.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class PolyglotReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const skipped = [];
    runner.on(EVENT_TEST_PENDING, (test) => {
      skipped.push({ title: test.fullTitle(), reason: test.polyglotSkipReason ?? null });
    });
    runner.once(EVENT_RUN_END, () => {
      const dir = process.env.POLYGLOT_TEST_RESULTS;
      if (!dir) return;
      const pkg = JSON.parse(fs.readFileSync(path.join(process.cwd(), 'package.json'), 'utf8')).name;
      const s = runner.stats ?? this.stats;
      const out = {
        package: pkg,
        passed: s.passes,
        failed: s.failures,
        skipped: s.pending,
        skippedTests: skipped,
      };
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${pkg.replace(/[^a-z0-9-]/gi, '_')}.json`);
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(out, null, 2));
      fs.renameSync(`${file}.tmp`, file);
    });
  }
}
module.exports = PolyglotReporter;
