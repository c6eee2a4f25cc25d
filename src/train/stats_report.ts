/**
 * The numerics lab's files: stats.json (the records of src/quant/stats.ts with what they were
 * measured on; schema in docs/numerics.md) and stats.html, the page people read: per tensor class
 * a heatmap of layers x log2 |x| (after the recipe's scaling) with each candidate format's range
 * drawn above it, the narrowest candidate format per layer and tensor class, and the SNR of each
 * product per layer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SettingError } from '../errors.js';
import type { Format } from '../formats/index.js';
import { STAT_QUANTILES, STAT_TENSORS, type Recipe, type StatTensor, type StatsRecord, type TensorClassSpec } from '../quant/index.js';
import { PAGE_STYLE, escapeHtml, svg, type TopLevelSpec } from './charts.js';
import { writeFileAtomic } from './safetensors.js';

export const STATS_FILE = 'stats.json';
export const STATS_PAGE = 'stats.html';
export const STATS_FORMAT = 'octet-stats-1';
/** Default of the narrowest-format table: underflow + overflow of at most 0.1% of the nonzero values. */
export const DEFAULT_TOLERANCE = 0.001;

export interface StatsFormatInfo {
  /** The key records use for it. */
  key: string;
  name: string;
  bits: number;
  mantissaBits: number;
  maxFinite: number;
  minNormal: number;
  minSubnormal: number;
  subnormals: boolean;
}

export interface StatsDocument {
  format: typeof STATS_FORMAT;
  model: string;
  data: string;
  recipe: Recipe;
  formats: StatsFormatInfo[];
  quantiles: number[];
  /** The steps collected, in order. */
  steps: number[];
  records: StatsRecord[];
}

export function statsDocument(model: string, data: string, recipe: Recipe, formats: readonly [string, Format][], records: StatsRecord[]): StatsDocument {
  return {
    format: STATS_FORMAT,
    model,
    data,
    recipe,
    formats: formats.map(([key, f]) => ({
      key, name: f.name, bits: f.bits, mantissaBits: f.mantissaBits, maxFinite: f.maxFinite, minNormal: f.minNormal, minSubnormal: f.minSubnormal, subnormals: f.subnormals,
    })),
    quantiles: [...STAT_QUANTILES],
    steps: [...new Set(records.map((r) => r.step))].sort((a, b) => a - b),
    records,
  };
}

/** Write stats.json into `dir` (atomically: a reader never sees half a file). */
export function writeStats(dir: string, doc: StatsDocument): string {
  const file = join(dir, STATS_FILE);
  writeFileAtomic(file, new TextEncoder().encode(JSON.stringify(doc) + '\n'));
  return file;
}

/** Read a stats.json, checking that it is one. */
export function readStats(file: string): StatsDocument {
  if (!existsSync(file)) throw new SettingError('stats', `no stats file at ${file}`);
  let doc: Partial<StatsDocument>;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<StatsDocument>;
  } catch (error) {
    throw new SettingError('stats', `${file} is not valid JSON (${(error as Error).message}); move it away to collect again`);
  }
  if (doc?.format !== STATS_FORMAT || !Array.isArray(doc.records) || !Array.isArray(doc.formats)) {
    throw new SettingError('stats', `${file} is not an Octet stats file (${STATS_FORMAT}); move it away to collect again`);
  }
  return doc as StatsDocument;
}

export interface NarrowestFit {
  /** The narrowest candidate that holds the tensor within the tolerance at every step collected, or null. */
  key: string | null;
  /** Its worst underflow + overflow over the steps (under its best per-tensor scale). */
  loss: number;
}

/**
 * Per layer and tensor class, the narrowest candidate format (fewest bits; among equally wide ones,
 * the most mantissa bits) whose underflow + overflow under its best per-tensor scale stays within
 * `tolerance` at every step collected.
 */
export function narrowestFormats(doc: StatsDocument, tolerance = DEFAULT_TOLERANCE): Map<string, Map<StatTensor, NarrowestFit>> {
  const order = [...doc.formats].sort((a, b) => a.bits - b.bits || b.mantissaBits - a.mantissaBits);
  const worst = new Map<string, Map<StatTensor, Map<string, number>>>();
  for (const r of doc.records) {
    const byTensor = worst.get(r.layer) ?? new Map<StatTensor, Map<string, number>>();
    worst.set(r.layer, byTensor);
    const byFormat = byTensor.get(r.tensor) ?? new Map<string, number>();
    byTensor.set(r.tensor, byFormat);
    for (const [key, fit] of Object.entries(r.formats_best)) byFormat.set(key, Math.max(byFormat.get(key) ?? 0, fit.underflow + fit.overflow));
  }
  const out = new Map<string, Map<StatTensor, NarrowestFit>>();
  for (const [layer, byTensor] of worst) {
    const row = new Map<StatTensor, NarrowestFit>();
    for (const [tensor, byFormat] of byTensor) {
      const fit = order.find((f) => (byFormat.get(f.key) ?? Infinity) <= tolerance);
      row.set(tensor, fit ? { key: fit.key, loss: byFormat.get(fit.key)! } : { key: null, loss: Math.min(...byFormat.values()) });
    }
    out.set(layer, row);
  }
  return out;
}

function classText(spec: TensorClassSpec | null): string {
  if (!spec) return 'float32';
  const s = spec.scaling;
  const scaling =
    s.mode === 'none' ? 'no scaling'
    : s.mode === 'dynamic' ? `per-layer dynamic scale (init 2^${Math.log2(s.init)}, grow x${s.growthFactor} every ${s.growthInterval} clean steps)`
    : `${s.mode} amax scaling${s.mode === 'delayed' ? ` (history ${s.history})` : ''}, margin ${s.margin}${s.powerOfTwo ? ', power of two' : ''}`;
  return `${spec.format}, ${spec.rounding}${spec.saturate ? ', saturating' : ''}, ${scaling}`;
}

/** A recipe's settings as rows (setting, value) for the reports. */
export function recipeRows(recipe: Recipe): [string, string][] {
  const acc = recipe.accumulation;
  return [
    ['weights', classText(recipe.weights)],
    ['activations', classText(recipe.activations)],
    ['errors', classText(recipe.errors)],
    ['weight gradients', classText(recipe.weightGradients)],
    ['accumulation', `${acc.format}${acc.chunk ? `, chunks of ${acc.chunk}` : ''}${acc.format === 'fp32' || acc.format === 'float32' ? '' : `, ${acc.rounding}`}`],
    ['master weights', `${recipe.masterWeights.format}${recipe.masterWeights.format === 'fp32' ? '' : `, ${recipe.masterWeights.rounding}`}`],
    ['optimizer moments', recipe.moments.format],
    ['loss scaling', recipe.lossScaling.mode],
    ['saved activations', recipe.savedActivations ?? 'float32'],
    ['float32 layers', recipe.highPrecisionLayers.join(', ') || 'none'],
  ];
}

/** How a class is scaled, in a few words. */
function scalingWords(spec: TensorClassSpec): string {
  const s = spec.scaling;
  if (s.mode === 'none') return 'unscaled';
  if (s.mode === 'dynamic') return 'per-layer dynamic scale';
  const granularity =
    s.mode !== 'current' || s.granularity === 'tensor' ? 'per tensor'
    : s.granularity === 'mx' ? `per MX block of ${s.block ?? 32}`
    : s.granularity === 'tile' ? `per tile of ${s.block ?? 128}`
    : `per ${s.granularity}`;
  return `${s.mode === 'delayed' ? 'delayed amax' : 'amax'} scale ${granularity}`;
}

/**
 * A recipe in one line: which GEMM operands it quantizes to what (and how they are scaled),
 * which stay float32, how products accumulate, and the master weights and loss scaling where
 * they are not float32 and none.
 */
export function recipeLine(recipe: Recipe): string {
  const classes = [['weights', recipe.weights], ['activations', recipe.activations], ['errors', recipe.errors], ['weight gradients', recipe.weightGradients]] as const;
  const groups = new Map<string, string[]>();
  const float: string[] = [];
  for (const [name, spec] of classes) {
    if (!spec) {
      float.push(name);
      continue;
    }
    const key = `${spec.format} (${scalingWords(spec)}${spec.rounding === 'nearest' ? '' : `, ${spec.rounding} rounding`}${spec.saturate ? ', saturating' : ''})`;
    groups.set(key, [...(groups.get(key) ?? []), name]);
  }
  const acc = recipe.accumulation;
  const parts = [...groups].map(([what, names]) => `${names.join(', ')} ${what}`);
  if (!parts.length && (acc.format === 'fp32' || acc.format === 'float32') && recipe.masterWeights.format === 'fp32') return 'float32 throughout: the reference';
  if (float.length) parts.push(`${float.join(', ')} float32`);
  parts.push(`accumulation ${acc.format}${acc.chunk ? ` in chunks of ${acc.chunk}` : ''}${acc.promote ? `, promoted to ${acc.outer} every ${acc.promote}` : ''}`);
  if (recipe.masterWeights.format !== 'fp32') parts.push(`master weights ${recipe.masterWeights.format}`);
  if (recipe.moments.format !== 'fp32') parts.push(`optimizer moments ${recipe.moments.format}`);
  if (recipe.lossScaling.mode !== 'none') parts.push(`${recipe.lossScaling.mode} loss scaling`);
  return parts.join('; ');
}

export function rowsTable(rows: readonly [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td style="text-align:left">${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

const TENSOR_TITLES: Record<StatTensor, string> = {
  weights: 'Weights', activations: 'Activations', errors: 'Errors (output gradients)', weightGradients: 'Weight gradients',
};

function layerOrder(doc: StatsDocument): string[] {
  return [...new Set(doc.records.map((r) => r.layer))];
}

/**
 * The distribution chart of the stats page for one tensor class at the last step collected
 * (layers x binades of |x * scale|, with the candidate formats' ranges above): null when the
 * document has no record of that class.
 */
export function lastDistribution(doc: StatsDocument, tensor: StatTensor): { step: number; spec: TopLevelSpec } | null {
  const steps = doc.steps.filter((st) => doc.records.some((r) => r.tensor === tensor && r.step === st));
  if (!steps.length) return null;
  const step = steps[steps.length - 1];
  const spec = heatmapSpec(doc, tensor, step, layerOrder(doc));
  return spec ? { step, spec } : null;
}

/** Heatmap of layers x floor(log2 |x * scale|) at one step, with the candidate formats' ranges above it. */
function heatmapSpec(doc: StatsDocument, tensor: StatTensor, step: number, layers: readonly string[]): TopLevelSpec | null {
  const cells: object[] = [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of doc.records) {
    if (r.tensor !== tensor || r.step !== step) continue;
    const nonzero = r.count - r.zeros - r.nonfinite;
    for (const [e, n] of Object.entries(r.log2_bins_scaled)) {
      const bin = Number(e);
      lo = Math.min(lo, bin);
      hi = Math.max(hi, bin + 1);
      cells.push({ layer: r.layer, e: bin, e2: bin + 1, share: n / Math.max(1, nonzero) });
    }
  }
  if (!cells.length) return null;
  const ranges: object[] = [];
  for (const f of doc.formats) {
    const sub = Math.log2(f.minSubnormal);
    const normal = Math.log2(f.minNormal);
    const top = Math.floor(Math.log2(f.maxFinite)) + 1;
    if (f.subnormals && sub < normal) ranges.push({ format: f.key, from: sub, to: normal, range: 'subnormal' });
    ranges.push({ format: f.key, from: normal, to: top, range: 'normal' });
  }
  const domain = [Math.max(lo - 2, -160), Math.min(hi + 2, 130)];
  const x = { type: 'quantitative', scale: { domain, nice: false, zero: false }, title: 'floor(log2 |x * scale|)' } as const;
  return {
    vconcat: [
      {
        width: 820, height: 16 * doc.formats.length, data: { values: ranges }, mark: { type: 'rect', clip: true },
        encoding: {
          x: { field: 'from', ...x, axis: { labels: false, title: null } }, x2: { field: 'to' },
          y: { field: 'format', type: 'nominal', sort: doc.formats.map((f) => f.key), title: 'format range' },
          color: { field: 'range', type: 'nominal', scale: { domain: ['normal', 'subnormal'], range: ['#4c78a8', '#9ecae9'] }, legend: { title: 'range' } },
        },
      },
      {
        width: 820, height: Math.max(120, 14 * layers.length), data: { values: cells }, mark: { type: 'rect', clip: true },
        encoding: {
          x: { field: 'e', ...x }, x2: { field: 'e2' },
          y: { field: 'layer', type: 'ordinal', sort: [...layers], title: null },
          color: { field: 'share', type: 'quantitative', scale: { scheme: 'viridis' }, legend: { title: 'share', format: '.0%' } },
          tooltip: [{ field: 'layer' }, { field: 'e' }, { field: 'share', format: '.3%' }],
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

function snrSpec(doc: StatsDocument, layers: readonly string[]): TopLevelSpec | null {
  const points: object[] = [];
  for (const r of doc.records) {
    if (r.tensor !== 'weights' || !r.snr_db) continue;
    for (const [product, snr] of Object.entries(r.snr_db)) if (snr !== null) points.push({ layer: r.layer, product, step: `step ${r.step}`, snr });
  }
  if (!points.length) return null;
  return {
    width: 820, height: 260, data: { values: points }, mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'layer', type: 'ordinal', sort: [...layers], title: null, axis: { labelAngle: -60 } },
      y: { field: 'snr', type: 'quantitative', title: 'SNR against the float32 shadow, dB', scale: { zero: false } },
      color: { field: 'product', type: 'nominal' },
      strokeDash: { field: 'step', type: 'nominal', legend: { symbolType: 'stroke' } },
    },
  } as TopLevelSpec;
}

const pct = (v: number) => (v === 0 ? '0' : v < 1e-4 ? v.toExponential(1) : `${(100 * v).toFixed(v < 0.01 ? 3 : 2)}%`);

/** Write stats.html next to stats.json. */
export async function writeStatsPage(dir: string, doc: StatsDocument, tolerance = DEFAULT_TOLERANCE): Promise<string> {
  const layers = layerOrder(doc);
  const narrowest = narrowestFormats(doc, tolerance);
  const tensors = STAT_TENSORS.filter((t) => doc.records.some((r) => r.tensor === t));
  const tableRows = layers.map((layer) => {
    const row = narrowest.get(layer)!;
    const cells = tensors.map((t) => {
      const fit = row.get(t);
      if (!fit) return '<td>-</td>';
      return `<td title="worst underflow + overflow ${pct(fit.loss)}">${fit.key ? escapeHtml(fit.key) : `<b>none</b> (${pct(fit.loss)})`}</td>`;
    });
    return `<tr><td>${escapeHtml(layer)}</td>${cells.join('')}</tr>`;
  });
  const sections: string[] = [];
  for (const tensor of tensors) {
    for (const step of doc.steps) {
      const spec = heatmapSpec(doc, tensor, step, layers);
      if (spec) sections.push(`<h3>${TENSOR_TITLES[tensor]}, step ${step}</h3>\n${await svg(spec)}`);
    }
  }
  const snr = snrSpec(doc, layers);
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>Octet numerics: ${escapeHtml(doc.model)} on ${escapeHtml(doc.data)} under ${escapeHtml(doc.recipe.name)}</title>
<style>${PAGE_STYLE}</style></head><body>
<h1>Numerics of ${escapeHtml(doc.model)} on ${escapeHtml(doc.data)} under ${escapeHtml(doc.recipe.name)}</h1>
<p>Steps collected: ${doc.steps.join(', ')}. Candidate formats: ${doc.formats.map((f) => escapeHtml(f.key)).join(', ')}. The records are in <a href="${STATS_FILE}">${STATS_FILE}</a> (schema: docs/numerics.md).</p>
<h2>The recipe</h2>
${rowsTable(recipeRows(doc.recipe))}
<h2>Narrowest format per layer and tensor</h2>
<p class="note">The narrowest candidate (fewest bits; then the most mantissa bits) whose underflow + overflow under its best per-tensor scale
(max finite / amax) stays at or below ${pct(tolerance)} of the nonzero values at every step collected; <b>none</b> gives the best candidate's share.</p>
<table><tr><th>layer</th>${tensors.map((t) => `<th>${TENSOR_TITLES[t]}</th>`).join('')}</tr>
${tableRows.join('\n')}
</table>
<h2>Product error against the float32 shadow</h2>
<p class="note">Each product of a quantized layer against the same product of the unquantized operands in float32, on the same step.</p>
${snr ? await svg(snr) : '<p>No quantized layer: every product is float32.</p>'}
<h2>Distributions against the formats' ranges</h2>
<p class="note">Each row is a layer, each column a binade of |x| after the recipe's scaling (x * scale, what gets encoded; float32 tensors: scale 1);
colour is the share of the nonzero values in that binade. Above, each candidate format's normal and subnormal range on the same axis.</p>
${sections.join('\n')}
</body></html>
`;
  const file = join(dir, STATS_PAGE);
  writeFileAtomic(file, new TextEncoder().encode(html));
  return file;
}
