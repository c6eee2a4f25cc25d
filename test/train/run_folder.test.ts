import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { checkFreshFolder, checkResumable, prepareOutputFolder, removeStaleTemporaries } from '../../src/train/run_folder.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('run folders', () => {
  test('an output folder that is a file, under a file or empty is named; a missing one is made', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-folder-'));
    writeFileSync(join(dir, 'file'), '');
    assert.throws(() => prepareOutputFolder(join(dir, 'file')), /the output folder .*file is a file/);
    assert.throws(() => prepareOutputFolder(join(dir, 'file', 'run')), /cannot be used: a part of its path .* is a file/);
    assert.throws(() => prepareOutputFolder(''), /the output folder is empty/);
    prepareOutputFolder(join(dir, 'new', 'run'));
    assert.deepEqual(readdirSync(join(dir, 'new')), ['run']);
  });

  test('a folder that is not writable is named (run as an unprivileged user where the tests run as root)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-folder-'));
    chmodSync(dir, 0o755);
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    const script = `import('./src/train/run_folder.ts').then((m) => { try { m.prepareOutputFolder(${JSON.stringify(join(locked, 'run'))}); console.log('made'); } catch (e) { console.log(e.message); } })`;
    const asRoot = process.getuid?.() === 0;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, encoding: 'utf8', ...(asRoot ? { uid: 65534, gid: 65534, env: { ...process.env, HOME: tmpdir() } } : {}) });
    assert.match(r.stdout, /the output folder .*locked\/run cannot be used: it is not writable; give another folder/, r.stderr);
  });

  test('a new run refuses a folder holding a run unless it may overwrite it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-folder-'));
    checkFreshFolder(dir, false);
    writeFileSync(join(dir, 'metrics.jsonl'), '');
    assert.throws(() => checkFreshFolder(dir, false), /already holds a run \(metrics\.jsonl\); continue it with resume/);
    checkFreshFolder(dir, true);
  });

  test('stale temporary files of killed writes are removed, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'octet-folder-'));
    for (const f of ['.checkpoint.safetensors.123.tmp', '.metrics.jsonl.9.tmp', 'checkpoint.safetensors', 'notes.tmp']) writeFileSync(join(dir, f), '');
    assert.deepEqual(removeStaleTemporaries(dir).sort(), ['.checkpoint.safetensors.123.tmp', '.metrics.jsonl.9.tmp']);
    assert.deepEqual(readdirSync(dir).sort(), ['checkpoint.safetensors', 'notes.tmp']);
  });

  test('resuming names every setting that differs', () => {
    const saved = { model: 'resnet20', lr: 0.01, epochs: 2, recipe: { name: 'fp8', a: 1 } as { name: string }, conv: 'direct' };
    checkResumable(saved, { ...saved }, 'ckpt');
    assert.throws(() => checkResumable(saved, { ...saved, lr: 0.02, epochs: 3 }, 'ckpt'), /ckpt was made with epochs 2, this run asks for 3; lr 0\.01, this run asks for 0\.02; resume/);
    assert.throws(() => checkResumable(saved, { ...saved, recipe: { name: 'fp8', a: 2 } as { name: string } }, 'ckpt'), /recipe fp8 with other contents \(a changed since\)/);
  });
});
