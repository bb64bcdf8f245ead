/**
 * The task registry: built-in tasks, YAML tasks from include paths, tasks from npm task packages; names resolve to
 * tasks and their language variants (`xquad` with `--langs de,en:de`, `xquad_de`, `xquad_en_de`, a group or tag).
 */
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILTIN_TASKS } from './builtin/index.js';
import { TasksError } from './errors.js';
import type { TaskSelection } from './runner.js';
import { defineTask, type Task, type TaskDefinition } from './task.js';
import { taskVariants } from './variants.js';
import { loadYamlDir } from './yaml-task.js';

/** What a task package exports (its main module): task definitions and/or folders of YAML tasks. */
export interface TaskPackageExports {
  tasks?: TaskDefinition[];
  /** Folders of lm-evaluation-harness YAML tasks (absolute, or relative to the package's folder). */
  includePaths?: string[];
  /** Group name → task names. */
  groups?: Record<string, string[]>;
}

export interface LoadedTaskPackage {
  name: string;
  version: string | null;
  dir: string;
  tasks: Task[];
  groups: Record<string, string[]>;
}

function isPathSpec(spec: string): boolean {
  return /^(\.{1,2}([\\/]|$)|[\\/]|[A-Za-z]:[\\/])/.test(spec);
}

/** The folder of an installed package: `node_modules/<name>` in `cwd` or a folder above it. */
function findInstalled(name: string, cwd: string): string | null {
  let dir = path.resolve(cwd);
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

function exportsEntry(pkg: Record<string, unknown>): string | null {
  const ex = pkg.exports;
  const pick = (v: unknown): string | null => {
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      for (const k of ['import', 'node', 'default']) {
        const r = pick(o[k]);
        if (r) return r;
      }
    }
    return null;
  };
  if (ex !== undefined) {
    if (typeof ex === 'string') return ex;
    if (ex && typeof ex === 'object' && !Array.isArray(ex)) {
      const o = ex as Record<string, unknown>;
      return pick('.' in o ? o['.'] : o);
    }
  }
  return typeof pkg.module === 'string' ? pkg.module : typeof pkg.main === 'string' ? pkg.main : null;
}

/**
 * Loads a task package: by path (`./examples/task-package`, a folder with a package.json) or by the name of an
 * installed npm package (looked up in node_modules from `cwd` upwards). Its main module (package.json `exports["."]`,
 * else `module`/`main`, else index.js) exports `tasks` (task definitions) and/or `includePaths` (YAML folders), by
 * name or as the default export; package.json `polyglot.includePaths` lists YAML folders too.
 */
export async function loadTaskPackage(spec: string, cwd = process.cwd()): Promise<LoadedTaskPackage> {
  const dir =
    isPathSpec(spec) || existsSync(path.resolve(cwd, spec, 'package.json'))
      ? path.resolve(cwd, spec)
      : findInstalled(spec, cwd);
  if (!dir || !existsSync(path.join(dir, 'package.json'))) {
    throw new TasksError(
      'task-package-not-found',
      isPathSpec(spec)
        ? `${spec}: no package.json there (a task package is a folder with a package.json)`
        : `task package ${spec} is not installed (no node_modules/${spec} from ${cwd} up); run \`npm install ${spec}\`, or give its folder as a path`,
    );
  }
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(await fsp.readFile(path.join(dir, 'package.json'), 'utf8'));
  } catch (e) {
    throw new TasksError('bad-task-package', `${dir}/package.json: ${(e as Error).message}`, { cause: e });
  }
  const name = typeof pkg.name === 'string' ? pkg.name : path.basename(dir);
  const entry = exportsEntry(pkg) ?? 'index.js';
  const file = path.resolve(dir, entry);
  const polyglot = (pkg.polyglot ?? {}) as { includePaths?: unknown };
  const includePaths: string[] = Array.isArray(polyglot.includePaths)
    ? polyglot.includePaths.filter((p): p is string => typeof p === 'string')
    : [];
  let mod: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (e) {
      throw new TasksError('bad-task-package', `${name}: cannot import ${file}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  } else if (includePaths.length === 0) {
    throw new TasksError('bad-task-package', `${name}: its main module ${file} does not exist`);
  }
  const def = mod.default as unknown;
  const ex: TaskPackageExports = Array.isArray(def)
    ? { tasks: def as TaskDefinition[] }
    : {
        ...(def && typeof def === 'object' ? (def as TaskPackageExports) : {}),
        ...(mod as TaskPackageExports),
      };
  const tasks: Task[] = [];
  const groups: Record<string, string[]> = { ...(ex.groups ?? {}) };
  for (const t of ex.tasks ?? []) {
    const task = defineTask({ ...t, source: t.source ?? name });
    tasks.push(task);
  }
  for (const p of [...includePaths, ...(ex.includePaths ?? [])]) {
    const yamlDir = path.resolve(dir, p);
    const r = await loadYamlDir(yamlDir);
    tasks.push(
      ...r.tasks.map((t) => ({ ...t, source: `${name} (${path.relative(dir, t.source ?? yamlDir)})` })),
    );
    for (const [g, members] of Object.entries(r.groups)) groups[g] = [...(groups[g] ?? []), ...members];
  }
  if (tasks.length === 0) {
    throw new TasksError(
      'bad-task-package',
      `${name}: exports no tasks (export \`tasks\` — task definitions — or \`includePaths\` — folders of YAML tasks)`,
    );
  }
  return { name, version: typeof pkg.version === 'string' ? pkg.version : null, dir, tasks, groups };
}

export class TaskRegistry {
  private readonly tasks = new Map<string, Task>();
  private readonly groups = new Map<string, string[]>();

  /** A registry holding the built-in tasks. */
  static withBuiltins(): TaskRegistry {
    const r = new TaskRegistry();
    for (const t of BUILTIN_TASKS) r.register(t);
    return r;
  }

  /** Adds a task; a name already taken raises `duplicate-task` unless `replace`. */
  register(task: Task, options: { replace?: boolean } = {}): void {
    const t = defineTask(task);
    const old = this.tasks.get(t.name);
    if (old && !options.replace) {
      throw new TasksError(
        'duplicate-task',
        `task ${t.name} from ${t.source ?? 'a definition'} is already defined (by ${old.source ?? 'builtin'})`,
      );
    }
    this.tasks.set(t.name, t);
  }

  registerGroup(name: string, members: readonly string[]): void {
    this.groups.set(name, [...new Set([...(this.groups.get(name) ?? []), ...members])]);
  }

  /** Adds the YAML tasks under a folder (`--include-path`); returns their names. */
  async addIncludePath(dir: string): Promise<string[]> {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new TasksError('include-path-missing', `--include-path ${dir}: no such folder`);
    }
    const r = await loadYamlDir(dir);
    for (const t of r.tasks) this.register(t);
    for (const [g, members] of Object.entries(r.groups)) this.registerGroup(g, members);
    return r.tasks.map((t) => t.name);
  }

  /** Adds the tasks of a task package (`--task-package`); returns it. */
  async addTaskPackage(spec: string, cwd?: string): Promise<LoadedTaskPackage> {
    const p = await loadTaskPackage(spec, cwd);
    for (const t of p.tasks) this.register(t);
    for (const [g, members] of Object.entries(p.groups)) this.registerGroup(g, members);
    return p;
  }

  get(name: string): Task | undefined {
    return this.tasks.get(name);
  }

  list(): Task[] {
    return [...this.tasks.values()];
  }

  groupNames(): Record<string, string[]> {
    return Object.fromEntries(this.groups);
  }

  /**
   * Tasks and variants for names: a task (with the language specs `langs`: `de`, `en:de`, `all`), a variant name
   * (`xquad_de`, `xquad_en_de`), or a group/tag. Unknown names raise `unknown-task` listing the known ones.
   */
  resolve(names: readonly string[], langs?: readonly string[]): TaskSelection[] {
    const out: TaskSelection[] = [];
    const add = (task: Task, variants: TaskSelection['variants']) => {
      const have = out.find((s) => s.task === task);
      if (!have) out.push({ task, variants: [...variants] });
      else for (const v of variants) if (!have.variants.some((x) => x.name === v.name)) have.variants.push(v);
    };
    const visit = (name: string, depth: number) => {
      const task = this.tasks.get(name);
      if (task) return add(task, taskVariants(task, langs));
      const group = this.groups.get(name);
      if (group && depth < 8) {
        for (const m of group) visit(m, depth + 1);
        return;
      }
      // A variant name: the longest task name followed by _<lang> or _<prompt>_<data>.
      const candidates = [...this.tasks.keys()]
        .filter((t) => name.startsWith(`${t}_`))
        .sort((a, b) => b.length - a.length);
      for (const t of candidates) {
        const rest = name.slice(t.length + 1);
        const m = /^([a-z]{2,3})(?:_([a-z]{2,3}))?$/.exec(rest);
        if (!m) continue;
        const task2 = this.tasks.get(t)!;
        const spec = m[2] ? (m[1] === m[2] ? m[1]! : `${m[1]}:${m[2]}`) : m[1]!;
        return add(task2, taskVariants(task2, [spec]));
      }
      const known = [...this.tasks.keys(), ...this.groups.keys()].sort();
      throw new TasksError(
        'unknown-task',
        `unknown task "${name}"; known tasks: ${known.join(', ')} (add YAML tasks with --include-path DIR, packages with --task-package NAME)`,
      );
    };
    for (const n of names) {
      const name = n.trim();
      if (name !== '') visit(name, 0);
    }
    if (out.length === 0) throw new TasksError('no-tasks', 'no task given (--task NAME[,NAME…])');
    return out;
  }
}
