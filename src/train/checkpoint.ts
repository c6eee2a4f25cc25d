/**
 * Checkpoints: one safetensors file holding the model's parameters and buffers (`model.*`, F32),
 * the optimizer's slots (`optimizer.*`, F32) and, for layers whose recipe stores weights in an
 * 8-bit float, the weights as the forward pass uses them (`fp8.<layer>.weight` as F8_E5M2 or
 * F8_E4M3 codes, with `fp8.<layer>.weight_scale`: real value = decode(code) / scale). The JSON
 * record (run config with the recipe, step, epoch, optimizer, scaler and RNG state) is the file's
 * `__metadata__.octet`. A run that prunes adds each pruned layer's keep pattern (`prune.<parameter>`,
 * U8 [block rows, block columns]; the block shape is in the record's config). Written atomically, so a crash at any moment leaves the previous
 * checkpoint intact.
 */
import { createHash } from 'node:crypto';
import { DataFileError } from '../data/index.js';
import { e8m0FromExponent, resolveFormat } from '../formats/index.js';
import { blockQuantize, encode } from '../kernels/index.js';
import { Dropout, type Module } from '../nn/index.js';
import type { Optimizer, OptimizerState } from '../optim/index.js';
import { amaxOf, scaleFromAmax, type QuantSession, type SessionState } from '../quant/index.js';
import { asFloat32, codeDtype, f32Tensor, fillsBytes, packCodes, readSafetensors, writeSafetensors, type SafetensorsDtype, type StoredTensor } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'octet-checkpoint-1';

export interface CheckpointRecord<Config> {
  format: typeof CHECKPOINT_FORMAT;
  config: Config;
  /** Steps completed. */
  step: number;
  optimizerStep: number;
  session: SessionState;
  /** Dropout generator counters by module path. */
  dropout: Record<string, number>;
  /** The training metrics' logging window in progress (so a resumed run logs what an uninterrupted one would). */
  window?: { loss: number; correct: number; count: number };
}

/**
 * A block-scaled recipe's weights as its forward GEMMs use them: [OC, K] codes (K = in * kh * kw)
 * cut in blocks along K, and `weight_scale` [row blocks, K blocks]: E8M0 codes (F8_E8M0, value
 * 2^(code - 127), real weight = decode(code) * that) for mx, else float32 divisors (real weight =
 * decode(code) / scale). FP4 E2M1 goes out as F4 (two codes a byte), FP6 as F6_E2M3 / F6_E3M2
 * (four codes in three bytes). The specification wants sub-byte tensors to fill whole bytes: a
 * layer with an odd count of FP4 weights, or one not a multiple of 4 of FP6, is left out.
 */
function blockExport(layer: QuantSession['layers'][number], dtype: SafetensorsDtype, tensors: Map<string, StoredTensor>): void {
  const w = layer.layer.weight;
  const rows = w.shape[0];
  const k = w.data.length / rows;
  const spec = layer.gemmOptions('forward').blocks?.w;
  if (!spec) return;
  const q = blockQuantize(w.data, rows, k, 'rk', spec);
  const codes = new Uint8Array(rows * k);
  for (let t = 0; t < k; t++) for (let r = 0; r < rows; r++) codes[r * k + t] = q.codes[t * rows + r];
  const rowBlocks = Math.ceil(rows / q.blockRows);
  const kBlocks = Math.ceil(k / q.blockK);
  const byRow = new Float32Array(rowBlocks * kBlocks);
  for (let kb = 0; kb < kBlocks; kb++) for (let rb = 0; rb < rowBlocks; rb++) byRow[rb * kBlocks + kb] = q.scales[kb * rowBlocks + rb];
  if (!fillsBytes(dtype, codes.length)) return;
  tensors.set(`fp8.${layer.name}.weight`, { dtype, shape: [rows, k], bytes: packCodes(dtype, codes) });
  tensors.set(
    `fp8.${layer.name}.weight_scale`,
    q.scaleKind === 'e8m0'
      ? { dtype: 'F8_E8M0', shape: [rowBlocks, kBlocks], bytes: Uint8Array.from(byRow, (s) => e8m0FromExponent(-Math.log2(s))) }
      : f32Tensor(byRow, [rowBlocks, kBlocks]),
  );
}

function fp8Export(session: QuantSession, tensors: Map<string, StoredTensor>): void {
  for (const layer of session.layers) {
    const spec = session.recipe.weights;
    if (!spec) continue;
    const format = resolveFormat(spec.format);
    const dtype = codeDtype(format.name);
    if (!dtype) continue;
    if (layer.blockScaled) {
      blockExport(layer, dtype, tensors);
      continue;
    }
    const w = layer.layer.weight;
    const scaling = spec.scaling;
    const margin = scaling.mode === 'current' || scaling.mode === 'delayed' ? scaling.margin : 0;
    const scale = scaling.mode === 'none' ? 1 : (scaleFromAmax(amaxOf(w.data), format, margin, true) ?? 1);
    const scaled = w.data.map((v) => v * scale);
    const codes = encode(scaled, format, { saturate: true }) as Uint8Array;
    if (!fillsBytes(dtype, codes.length)) continue;
    tensors.set(`fp8.${layer.name}.weight`, { dtype, shape: [...w.shape], bytes: packCodes(dtype, codes) });
    tensors.set(`fp8.${layer.name}.weight_scale`, f32Tensor(Float32Array.of(scale), [1]));
  }
}

/** A pruned layer's keep pattern as stored: `prune.<parameter>`, U8 [block rows, block columns], 1 = kept. */
export interface StoredMask {
  name: string;
  keep: Uint8Array;
  shape: [number, number];
}

export function saveCheckpoint<Config>(
  file: string,
  model: Module,
  optimizer: Optimizer,
  session: QuantSession,
  record: Omit<CheckpointRecord<Config>, 'format' | 'optimizerStep' | 'session' | 'dropout'>,
  masks: readonly StoredMask[] = [],
): void {
  const tensors = new Map<string, StoredTensor>();
  for (const [name, t] of model.stateDict()) tensors.set(`model.${name}`, f32Tensor(t.data, t.shape));
  const optimizerState = optimizer.state();
  for (const [key, values] of Object.entries(optimizerState.slots)) tensors.set(`optimizer.${key}`, f32Tensor(values, [values.length]));
  fp8Export(session, tensors);
  for (const m of masks) tensors.set(`prune.${m.name}`, { dtype: 'U8', shape: [...m.shape], bytes: m.keep });
  const dropout: Record<string, number> = {};
  for (const [path, m] of model.namedModules()) if (m instanceof Dropout) dropout[path] = m.generator.counter;
  const full: CheckpointRecord<Config> = { format: CHECKPOINT_FORMAT, ...record, optimizerStep: optimizerState.step, session: session.state(), dropout };
  writeSafetensors(file, tensors, { format: CHECKPOINT_FORMAT, octet: JSON.stringify(full), [HASHES]: JSON.stringify(tensorHashes(tensors)) });
}

/** Metadata key of the tensors' content hashes: { name: sha256 of its bytes (hex) }. */
const HASHES = 'tensor_sha256';

function tensorHashes(tensors: ReadonlyMap<string, StoredTensor>): Record<string, string> {
  return Object.fromEntries([...tensors].map(([name, t]) => [name, createHash('sha256').update(t.bytes).digest('hex')]));
}

/** A checkpoint's tensors are the ones it was written with: each one's bytes against its stored hash (checkpoints from before hashes are taken as they are). */
function verifyTensors(file: string, tensors: ReadonlyMap<string, StoredTensor>, metadata: Record<string, string>): void {
  if (metadata[HASHES] === undefined) return;
  let expected: Record<string, string>;
  try {
    expected = JSON.parse(metadata[HASHES]) as Record<string, string>;
  } catch {
    throw new DataFileError(file, `its ${HASHES} metadata is not JSON; the file was altered or corrupted`);
  }
  const actual = tensorHashes(tensors);
  for (const name of new Set([...Object.keys(expected), ...tensors.keys()])) {
    if (expected[name] === undefined || actual[name] === undefined) {
      throw new DataFileError(file, `tensor ${name} is ${actual[name] === undefined ? 'missing' : 'not among those it was written with'}; the file was altered or corrupted`);
    }
    if (expected[name] !== actual[name]) {
      throw new DataFileError(file, `the bytes of tensor ${name} do not match the hash it was written with; the file was altered or corrupted (restore it from a copy, or retrain)`);
    }
  }
}

/** The record's fields a checkpoint cannot be read without, checked. */
function checkRecord(file: string, record: unknown): void {
  const r = record as Partial<CheckpointRecord<unknown>> | null;
  const missing = r === null || typeof r !== 'object' ? ['the whole record'] : [
    ...(typeof r.config !== 'object' || r.config === null ? ['config'] : []),
    ...(typeof r.step !== 'number' ? ['step'] : []),
    ...(typeof r.optimizerStep !== 'number' ? ['optimizerStep'] : []),
    ...(typeof r.session !== 'object' || r.session === null ? ['session'] : []),
    ...(typeof r.dropout !== 'object' || r.dropout === null ? ['dropout'] : []),
  ];
  if (missing.length) throw new DataFileError(file, `its Octet record lacks ${missing.join(', ')}; the file was altered or written by another tool`);
}

/** Read a checkpoint's record without touching a model (to learn its config). */
export function readCheckpointRecord<Config>(file: string): { record: CheckpointRecord<Config>; tensors: Map<string, StoredTensor> } {
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format !== CHECKPOINT_FORMAT || !metadata.octet) {
    throw new DataFileError(file, `is a safetensors file but not an Octet checkpoint (metadata format ${String(metadata.format)}; expected ${CHECKPOINT_FORMAT})`);
  }
  let record: unknown;
  try {
    record = JSON.parse(metadata.octet);
  } catch (error) {
    throw new DataFileError(file, `its Octet record is not JSON (${(error as Error).message}); the file was altered or corrupted`);
  }
  checkRecord(file, record);
  verifyTensors(file, tensors, metadata);
  return { record: record as CheckpointRecord<Config>, tensors };
}

/** The pruning masks a checkpoint holds, by parameter name (keep patterns, one byte per block). */
export function checkpointMasks(file: string, tensors: ReadonlyMap<string, StoredTensor>): Map<string, Uint8Array> {
  const masks = new Map<string, Uint8Array>();
  for (const [name, t] of tensors) {
    if (!name.startsWith('prune.')) continue;
    if (t.dtype !== 'U8') throw new DataFileError(file, `tensor ${name} is ${t.dtype}; a pruning mask is U8`);
    if (t.bytes.some((b) => b > 1)) throw new DataFileError(file, `tensor ${name} holds values other than 0 and 1; the file was altered or corrupted`);
    masks.set(name.slice('prune.'.length), t.bytes.slice());
  }
  return masks;
}

/** Restore model, optimizer, session and dropout state from a checkpoint read by readCheckpointRecord. */
export function restoreCheckpoint<Config>(
  file: string,
  loaded: { record: CheckpointRecord<Config>; tensors: Map<string, StoredTensor> },
  model: Module,
  optimizer: Optimizer | null,
  session: QuantSession | null,
): void {
  const { record, tensors } = loaded;
  for (const [name, t] of model.stateDict()) {
    const stored = tensors.get(`model.${name}`);
    if (!stored) throw new DataFileError(file, `has no tensor model.${name}; it was made for another model`);
    if (stored.shape.length !== t.shape.length || stored.shape.some((d, i) => d !== t.shape[i])) {
      throw new DataFileError(file, `model.${name} has shape [${stored.shape.join(', ')}]; the model it describes needs [${t.shape.join(', ')}] (another width or depth?)`);
    }
    const values = asFloat32(stored, name, file);
    t.data.set(values);
  }
  if (optimizer) {
    const slots: OptimizerState['slots'] = {};
    for (const [name, t] of tensors) if (name.startsWith('optimizer.')) slots[name.slice('optimizer.'.length)] = asFloat32(t, name, file);
    optimizer.loadState({ step: record.optimizerStep, slots });
  }
  session?.loadState(record.session);
  for (const [path, m] of model.namedModules()) if (m instanceof Dropout && record.dropout[path] !== undefined) m.generator.counter = record.dropout[path];
}
