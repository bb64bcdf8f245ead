import { TasksError } from './errors.js';
import type { Task, Variant } from './task.js';

/** The variant name: `task_lang`, `task_prompt_data` for a cross-lingual pair, the task's name without languages. */
export function variantName(task: string, lang: string | null, promptLang: string | null): string {
  if (lang === null) return task;
  return promptLang === null || promptLang === lang ? `${task}_${lang}` : `${task}_${promptLang}_${lang}`;
}

function variant(task: Task, promptLang: string | null, lang: string | null): Variant {
  return {
    task: task.name,
    name: variantName(task.name, lang, promptLang),
    lang,
    promptLang: promptLang ?? lang,
  };
}

/**
 * The variants of a task for language specs: `de` (prompt and data in German), `en:de` (English prompt, German data;
 * tasks with `promptLanguages`), `all` (every data language), `en:all` (English prompt, every data language).
 * Without specs, the task's `defaultLanguages` (else all its languages). A task without languages has one variant
 * and ignores the specs. Unknown languages raise `unknown-language` listing the task's.
 */
export function taskVariants(task: Task, specs?: readonly string[]): Variant[] {
  if (task.languages.length === 0) return [variant(task, null, null)];
  const list = specs && specs.length > 0 ? specs : (task.defaultLanguages ?? task.languages);
  const out: Variant[] = [];
  const seen = new Set<string>();
  const add = (v: Variant) => {
    if (!seen.has(v.name)) {
      seen.add(v.name);
      out.push(v);
    }
  };
  const dataLang = (l: string, spec: string): string[] => {
    if (l === 'all') return [...task.languages];
    if (!task.languages.includes(l)) {
      throw new TasksError(
        'unknown-language',
        `${task.name}: no data language "${l}" (in --langs ${JSON.stringify(spec)}); it has ${task.languages.join(', ')}`,
      );
    }
    return [l];
  };
  for (const raw of list) {
    const spec = raw.trim();
    if (spec === '') continue;
    const parts = spec.split(':');
    if (parts.length > 2) {
      throw new TasksError(
        'bad-language-spec',
        `${task.name}: bad language spec "${spec}"; use de, en:de or all`,
      );
    }
    if (parts.length === 1) {
      const prompts = task.promptLanguages;
      for (const l of dataLang(parts[0]!, spec)) {
        if (prompts && !prompts.includes(l)) {
          if (parts[0] === 'all') continue;
          throw new TasksError(
            'unknown-language',
            `${task.name}: no prompt template in "${l}"; give a prompt language for the ${l} data, e.g. --langs en:${l} (prompt languages: ${prompts.join(', ')})`,
          );
        }
        add(variant(task, l, l));
      }
      continue;
    }
    const [p, d] = parts as [string, string];
    const prompts = task.promptLanguages;
    if (!prompts) {
      if (p === d) {
        for (const l of dataLang(d, spec)) add(variant(task, l, l));
        continue;
      }
      throw new TasksError(
        'not-cross-lingual',
        `${task.name}: has no prompt/data language pairs ("${spec}"); give data languages only (e.g. ${task.languages[0]})`,
      );
    }
    const promptList = p === 'all' ? [...prompts] : [p];
    for (const pl of promptList) {
      if (!prompts.includes(pl)) {
        throw new TasksError(
          'unknown-language',
          `${task.name}: no prompt language "${pl}" (in --langs "${spec}"); it has ${prompts.join(', ')}`,
        );
      }
      for (const l of dataLang(d, spec)) add(variant(task, pl, l));
    }
  }
  return out;
}
