/**
 * The comparison report: summary.json and report.html with charts rendered to SVG by Vega-Lite
 * (no browser needed): loss and accuracy curves per recipe, per-layer error scales and underflow
 * fractions over time, and the final table.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { METRICS_FILE } from './run_folder.js';
import type { TrainResult } from './trainer.js';
import { writeFileAtomic } from './safetensors.js';

export interface CompareEntry {
  recipe: string;
  out: string;
  result: TrainResult;
}

export interface CompareSummary {
  model: string;
  data: string;
  results: { recipe: string; metric: 'top1' | 'miou'; value: number; epochs: number; seconds: number; top5?: number; images_per_s: number; peak_rss_mb: number }[];
}

export function summarizeComparison(model: string, data: string, entries: readonly CompareEntry[]): CompareSummary {
  return {
    model,
    data,
    results: entries.map(({ recipe, result }) => ({
      recipe,
      metric: result.final?.metric ?? 'top1',
      value: result.final?.value ?? NaN,
      ...(result.final?.top5 !== undefined ? { top5: result.final.top5 } : {}),
      epochs: result.config.epochs,
      seconds: result.seconds,
      images_per_s: (result.steps * Math.min(result.config.batchSize, result.config.maxTrain ?? Infinity)) / result.seconds,
      peak_rss_mb: result.peakRssMb,
    })),
  };
}

type MetricsRecord = Record<string, unknown> & { type: string; step: number };

function readMetrics(out: string): MetricsRecord[] {
  return readFileSync(join(out, METRICS_FILE), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MetricsRecord);
}

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export async function writeReport(dir: string, summary: CompareSummary, entries: readonly CompareEntry[]): Promise<string> {
  const train: object[] = [];
  const evals: object[] = [];
  const numerics: object[] = [];
  for (const { recipe, out } of entries) {
    for (const r of readMetrics(out)) {
      if (r.type === 'train') train.push({ recipe, step: r.step, loss: r.loss, accuracy: r.accuracy });
      else if (r.type === 'eval') evals.push({ recipe, epoch: (r.epoch as number) + 1, value: r.value });
      else if (r.type === 'numerics' && r.tensor === 'errors') {
        numerics.push({ recipe, step: r.step, layer: r.layer, log2_scale: Math.log2(r.scale as number), underflow: r.underflow });
      }
    }
  }
  const metricName = summary.results[0]?.metric === 'miou' ? 'mIoU' : 'top-1';
  const charts: [string, TopLevelSpec][] = [
    ['Training loss', {
      width: 560, height: 260, data: { values: train }, mark: 'line',
      encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'loss', type: 'quantitative' }, color: { field: 'recipe', type: 'nominal' } },
    }],
    [`Training accuracy (running, per logging interval)`, {
      width: 560, height: 260, data: { values: train }, mark: 'line',
      encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'accuracy', type: 'quantitative' }, color: { field: 'recipe', type: 'nominal' } },
    }],
    [`Test ${metricName} per epoch`, {
      width: 560, height: 220, data: { values: evals }, mark: { type: 'line', point: true },
      encoding: { x: { field: 'epoch', type: 'ordinal' }, y: { field: 'value', type: 'quantitative', title: metricName }, color: { field: 'recipe', type: 'nominal' } },
    }],
  ];
  if (numerics.length) {
    charts.push(
      ['Error (gradient) scale per layer, log2', {
        data: { values: numerics }, mark: 'line',
        encoding: {
          x: { field: 'step', type: 'quantitative' }, y: { field: 'log2_scale', type: 'quantitative', title: 'log2 scale' },
          color: { field: 'layer', type: 'nominal', legend: { columns: 2, symbolLimit: 60 } }, row: { field: 'recipe', type: 'nominal' },
        },
        width: 520, height: 180,
      } as TopLevelSpec],
      ['Fraction of nonzero errors that underflowed to zero, per layer', {
        data: { values: numerics }, mark: 'line',
        encoding: {
          x: { field: 'step', type: 'quantitative' }, y: { field: 'underflow', type: 'quantitative' },
          color: { field: 'layer', type: 'nominal', legend: { columns: 2, symbolLimit: 60 } }, row: { field: 'recipe', type: 'nominal' },
        },
        width: 520, height: 180,
      } as TopLevelSpec],
    );
  }
  const rendered = await Promise.all(charts.map(async ([title, spec]) => `<h2>${escape(title)}</h2>\n${await svg(spec)}`));
  const rows = summary.results
    .map((r) => `<tr><td>${escape(r.recipe)}</td><td>${(100 * r.value).toFixed(2)}%</td>${r.top5 !== undefined ? `<td>${(100 * r.top5).toFixed(2)}%</td>` : ''}<td>${r.epochs}</td><td>${r.seconds.toFixed(1)}</td><td>${r.images_per_s.toFixed(1)}</td></tr>`)
    .join('\n');
  const hasTop5 = summary.results.some((r) => r.top5 !== undefined);
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>Octet: ${escape(summary.model)} on ${escape(summary.data)}</title>
<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 10px;text-align:right}td:first-child{text-align:left}</style>
</head><body>
<h1>${escape(summary.model)} on ${escape(summary.data)}</h1>
<table><tr><th>recipe</th><th>${metricName}</th>${hasTop5 ? '<th>top-5</th>' : ''}<th>epochs</th><th>seconds</th><th>images/s</th></tr>
${rows}
</table>
${rendered.join('\n')}
</body></html>
`;
  const file = join(dir, 'report.html');
  writeFileAtomic(file, new TextEncoder().encode(html));
  return file;
}
