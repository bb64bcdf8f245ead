// Every package is publishable: metadata set, `npm pack` ships dist + types + README and nothing else, internal
// dependencies are workspace links that pnpm rewrites to versions when packing.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot } from '../shared.js';

const packagesDir = path.join(repoRoot, 'packages');
const packages = readdirSync(packagesDir).filter((d) =>
  existsSync(path.join(packagesDir, d, 'package.json')),
);
const EXPECTED = ['cli', 'data', 'infer', 'judge', 'lid', 'lora-merge', 'model', 'plots', 'sft', 'tasks'];

describe('repository layout', () => {
  it('has the ten packages of DESIGN.md', () => {
    expect([...packages].sort()).to.deep.equal(EXPECTED);
  });
  it('has the top-level files', () => {
    for (const f of [
      'README.md',
      'LICENSE',
      'package.json',
      'turbo.json',
      'pnpm-workspace.yaml',
      '.changeset/config.json',
      '.ci/run',
      'BENCHMARKS.md',
    ]) {
      expect(existsSync(path.join(repoRoot, f)), f).to.equal(true);
    }
    const cs = JSON.parse(readFileSync(path.join(repoRoot, '.changeset/config.json'), 'utf8'));
    expect(cs.baseBranch).to.equal('main');
  });
});

for (const dir of packages) {
  const pkgDir = path.join(packagesDir, dir);
  const pj = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  describe(`${pj.name} is publishable`, () => {
    it('declares name, exports, types, files, license, repository', () => {
      expect(pj.name).to.equal(`@polyglot/${dir}`);
      expect(pj.private).to.not.equal(true);
      expect(pj.license).to.equal('MIT');
      expect(pj.repository?.url).to.be.a('string');
      expect(pj.repository?.directory).to.equal(`packages/${dir}`);
      expect(pj.types).to.equal('./dist/index.d.ts');
      expect(pj.exports['.'].types).to.equal('./dist/index.d.ts');
      expect(pj.exports['.'].import).to.equal('./dist/index.js');
      expect(pj.files).to.include('dist');
      for (const [dep, range] of Object.entries<string>(pj.dependencies ?? {})) {
        if (dep.startsWith('@polyglot/')) expect(range, dep).to.equal('workspace:^');
      }
    });
    it('npm pack ships dist, types, README and LICENSE, and no tests, sources or fixtures', () => {
      const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: pkgDir,
        encoding: 'utf8',
      });
      const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
      for (const must of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) {
        expect(files, `${pj.name} must ship ${must}`).to.include(must);
      }
      // The CLI also ships the demo data of `polyglot reproduce` (dist/data/demo).
      const demo = pj.name === '@polyglot/cli' ? /^dist\/data\/demo\/.+\.(jsonl|json|md)$/ : /^$/;
      if (pj.name === '@polyglot/cli') expect(files).to.include('dist/data/demo/chat.jsonl');
      for (const f of files) {
        if (demo.test(f)) continue;
        expect(f, `${pj.name} ships ${f}`).to.match(
          /^(package\.json|README\.md|LICENSE|dist\/.+\.(js|d\.ts))$/,
        );
        expect(f).to.not.match(/(^|\/)(test|fixtures|bench)\//);
      }
      if (pj.bin)
        for (const b of Object.values<string>(pj.bin)) expect(files).to.include(b.replace(/^\.\//, ''));
      const readme = readFileSync(path.join(pkgDir, 'README.md'), 'utf8');
      expect(readme.length, `${pj.name} README`).to.be.greaterThan(300);
    });
  });
}

describe('pnpm pack rewrites internal dependencies to the released versions', () => {
  it('for @polyglot/cli (which depends on all the others)', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'polyglot-pack-'));
    try {
      execFileSync('pnpm', ['pack', '--pack-destination', tmp], {
        cwd: path.join(packagesDir, 'cli'),
        stdio: 'pipe',
      });
      const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;
      execFileSync('tar', ['-xzf', tgz], { cwd: tmp });
      const packed = JSON.parse(readFileSync(path.join(tmp, 'package', 'package.json'), 'utf8'));
      const internal = Object.entries<string>(packed.dependencies).filter(([d]) =>
        d.startsWith('@polyglot/'),
      );
      expect(internal.length).to.equal(9);
      for (const [dep, range] of internal) {
        const version = JSON.parse(
          readFileSync(path.join(packagesDir, dep.slice('@polyglot/'.length), 'package.json'), 'utf8'),
        ).version;
        expect(range, dep).to.equal(`^${version}`);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
