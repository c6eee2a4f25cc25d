/**
 * A run's output folder: what may be written into it, what a resume must find there, and the
 * files a run keeps (config.json, metrics.jsonl, checkpoint.safetensors, result.json). Nothing that
 * a run saved is replaced unless the caller asks for it, and a resume continues only the run the
 * folder holds, with the settings it was made with.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SettingError } from '../errors.js';
import { writeFileAtomic } from './safetensors.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const METRICS_FILE = 'metrics.jsonl';
export const CONFIG_FILE = 'config.json';
export const RESULT_FILE = 'result.json';
/** The numerics lab's files (stats_report.ts), part of the run whose steps they describe. */
const STATS_FILES = ['stats.json', 'stats.html'];
const RUN_FILES = [CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, RESULT_FILE, ...STATS_FILES];

/** The settings of a run that change its result, as TrainConfig names them. */
export const RESULT_SETTINGS = ['model', 'modelOptions', 'data', 'epochs', 'batchSize', 'lr', 'weightDecay', 'warmupSteps', 'optimizer', 'seed', 'maxTrain', 'prune', 'init', 'ignoreIndex', 'classWeights'] as const;

type ResultSettings = { [K in (typeof RESULT_SETTINGS)[number]]?: unknown } & { recipe: { name: string }; conv?: string };

/**
 * The output folder, made if missing; an error that says what is wrong with it otherwise (empty,
 * a file, under a file, not writable).
 */
export function prepareOutputFolder(out: string): void {
  if (!out) throw new SettingError('out', 'the output folder is empty; give a folder to write the run into');
  if (existsSync(out) && !statSync(out).isDirectory()) {
    throw new SettingError('out', `the output folder ${out} is a file; give a folder (it is made if missing)`);
  }
  try {
    mkdirSync(out, { recursive: true });
    accessSync(out, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? `a part of its path (${dirname(out)}) is a file` : code === 'EACCES' || code === 'EPERM' ? 'it is not writable' : `it cannot be made (${code ?? String(error)})`;
    throw new SettingError('out', `the output folder ${out} cannot be used: ${why}; give another folder`);
  }
}

/** The run files a folder holds. */
function runFilesIn(out: string): string[] {
  return RUN_FILES.filter((f) => existsSync(join(out, f)));
}

/** A new run may start in `out` only where no run is, unless it is asked to replace one. */
export function checkFreshFolder(out: string, overwrite: boolean): void {
  const found = runFilesIn(out);
  if (found.length && !overwrite) {
    throw new SettingError(
      'overwrite',
      `${out} already holds a run (${found.join(', ')}); continue it with resume, start in another output folder, or replace it with overwrite`,
    );
  }
}

/** Remove what a new run replaces (it has started: its first step ran). */
export function clearRun(out: string): void {
  for (const f of RUN_FILES) rmSync(join(out, f), { force: true });
}

/** Remove temporary files that a write killed halfway left behind (`.<name>.<pid>.tmp`). */
export function removeStaleTemporaries(out: string): string[] {
  const stale = readdirSync(out).filter((f) => /^\..+\.\d+\.tmp$/.test(f));
  for (const f of stale) rmSync(join(out, f), { force: true });
  return stale;
}

function show(v: unknown): string {
  return v === undefined ? 'unset' : JSON.stringify(v);
}

/** The top-level fields in which two recipes differ. */
function recipeDifferences(a: object, b: object): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => JSON.stringify((a as Record<string, unknown>)[k]) !== JSON.stringify((b as Record<string, unknown>)[k]));
}

/**
 * A resume continues the run only with the settings that made it: every setting that changes the
 * result must be the same, the recipe's contents included. Names every difference.
 */
export function checkResumable(saved: ResultSettings, config: ResultSettings, file: string): void {
  const differences: [string, string][] = [];
  for (const key of RESULT_SETTINGS) {
    if (JSON.stringify(saved[key]) !== JSON.stringify(config[key])) {
      differences.push([key, `${key} ${show(saved[key])}, this run asks for ${show(config[key])}`]);
    }
  }
  if (saved.recipe.name !== config.recipe.name) {
    differences.push(['recipe', `recipe ${saved.recipe.name}, this run asks for ${config.recipe.name}`]);
  } else if (JSON.stringify(saved.recipe) !== JSON.stringify(config.recipe)) {
    differences.push(['recipe', `recipe ${saved.recipe.name} with other contents (${recipeDifferences(saved.recipe, config.recipe).join(', ')} changed since)`]);
  }
  const savedConv = saved.conv ?? 'direct';
  if (savedConv !== config.conv) {
    differences.push(['conv', `float32 convolutions on the ${savedConv} product, this run uses ${config.conv} (resume with conv "${savedConv}" or OCTET_CONV=${savedConv})`]);
  }
  if (differences.length) {
    throw new SettingError(
      differences[0][0],
      `resume: ${file} was made with ${differences.map(([, d]) => d).join('; ')}; resume with the same settings to continue bit for bit, or start in another output folder`,
    );
  }
}

/** The metrics lines of steps up to `step` (what a killed run wrote after its last checkpoint goes). */
export function metricsUpTo(file: string, step: number): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { step?: number }).step! <= step;
      } catch {
        return false;
      }
    });
}

export function writeLines(file: string, lines: string[]): void {
  writeFileAtomic(file, new TextEncoder().encode(lines.map((l) => l + '\n').join('')));
}
