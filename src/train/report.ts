/**
 * The comparison report: summary.json and report.html with charts rendered to SVG by Vega-Lite
 * (no browser needed). It opens with the final table (each recipe's difference from fp32, or from
 * the first recipe without fp32, and its time), a line per recipe on what it quantized, and the
 * per-layer numerics: error scales and underflow as heatmaps (layer x step), and each quantized
 * run's error distribution against the formats' ranges where the numerics lab looked; then the
 * run's settings and each recipe's, loss and accuracy curves, and links to the lab's pages.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PAGE_STYLE, escapeHtml as escape, svg, type TopLevelSpec } from './charts.js';
import { METRICS_FILE } from './run_folder.js';
import { STATS_FILE, STATS_PAGE, lastDistribution, readStats, recipeLine, recipeRows, rowsTable } from './stats_report.js';
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
  results: {
    recipe: string; metric: 'top1' | 'miou'; value: number; epochs: number; seconds: number; top5?: number; images_per_s: number; peak_rss_mb: number;
    /** Segmentation: pixel accuracy and IoU per class (null for a class absent from labels and predictions, or ignored). */
    pixel_accuracy?: number; iou?: (number | null)[];
  }[];
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
      ...(result.final?.pixelAccuracy !== undefined ? { pixel_accuracy: result.final.pixelAccuracy } : {}),
      ...(result.final?.iou !== undefined ? { iou: result.final.iou.map((v) => (Number.isNaN(v) ? null : v)) } : {}),
      epochs: result.config.epochs,
      seconds: result.seconds,
      images_per_s: (result.steps * Math.min(result.config.batchSize, result.config.maxTrain ?? Infinity)) / result.seconds,
      peak_rss_mb: result.peakRssMb,
    })),
  };
}

/** The row the others are compared with: fp32's where the comparison has it, else the first. */
export function baselineOf(summary: CompareSummary): CompareSummary['results'][number] {
  return summary.results.find((r) => r.recipe === 'fp32') ?? summary.results[0];
}

/** A difference of two accuracies (fractions) in percentage points, signed: "+0.25", "-1.10". */
export function pointsText(delta: number): string {
  return `${delta >= 0 ? '+' : '-'}${(100 * Math.abs(delta)).toFixed(2)}`;
}

type MetricsRecord = Record<string, unknown> & { type: string; step: number };

function readMetrics(out: string): MetricsRecord[] {
  return readFileSync(join(out, METRICS_FILE), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MetricsRecord);
}

/** A heatmap of one per-layer quantity: layers down, logged steps across, one panel per recipe. */
function layerHeatmap(values: object[], field: string, title: string, layers: readonly string[], scheme: string): TopLevelSpec {
  return {
    data: { values }, mark: 'rect',
    encoding: {
      x: { field: 'step', type: 'ordinal', title: 'step', axis: { labelOverlap: true } },
      y: { field: 'layer', type: 'ordinal', sort: [...layers], title: null },
      color: { field, type: 'quantitative', title, scale: { scheme } },
      row: { field: 'recipe', type: 'nominal', title: null },
      tooltip: [{ field: 'recipe' }, { field: 'layer' }, { field: 'step' }, { field, format: '.4' }],
    },
    width: 760, height: Math.max(100, 12 * layers.length),
  } as TopLevelSpec;
}

/** The run's settings (from the first recipe's config) as rows. */
function configRows(result: TrainResult): [string, string][] {
  const c = result.config;
  return [
    ['model', `${c.model}${c.modelOptions.width ? ` (width ${c.modelOptions.width})` : ''}${c.modelOptions.depth ? ` (depth ${c.modelOptions.depth})` : ''}`],
    ['data', `${c.data}${c.maxTrain ? `, first ${c.maxTrain} training examples` : ''}${c.maxTest ? `, first ${c.maxTest} test examples` : ''}`],
    ['schedule', `${c.epochs} epoch(s), batch ${c.batchSize}, ${c.optimizer} lr ${c.lr} (cosine, warmup ${c.warmupSteps ?? '5%'}), weight decay ${c.weightDecay}`],
    ['seed', String(c.seed)],
    ['float32 convolutions', c.conv ?? 'default'],
  ];
}

export async function writeReport(dir: string, summary: CompareSummary, entries: readonly CompareEntry[]): Promise<string> {
  const train: object[] = [];
  const evals: object[] = [];
  const numerics: object[] = [];
  const layers: string[] = [];
  for (const { recipe, out } of entries) {
    for (const r of readMetrics(out)) {
      if (r.type === 'train') train.push({ recipe, step: r.step, loss: r.loss, accuracy: r.accuracy });
      else if (r.type === 'eval') evals.push({ recipe, epoch: (r.epoch as number) + 1, value: r.value });
      else if (r.type === 'numerics') {
        // Forward records (weights, activations) come in model order: the layers' order.
        const layer = r.layer as string;
        if (!layers.includes(layer)) layers.push(layer);
        if (r.tensor === 'errors') numerics.push({ recipe, step: r.step, layer, log2_scale: Math.log2(r.scale as number), underflow: r.underflow });
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
  const perClass = summary.results.flatMap((r) => (r.iou ?? []).flatMap((iou, c) => (iou === null ? [] : [{ recipe: r.recipe, class: c, iou }])));
  if (perClass.length) {
    charts.push(['IoU per class at the end (class 0: background)', {
      width: 560, height: 220, data: { values: perClass }, mark: 'bar',
      encoding: {
        x: { field: 'class', type: 'ordinal' }, xOffset: { field: 'recipe', type: 'nominal' }, y: { field: 'iou', type: 'quantitative', title: 'IoU', scale: { domain: [0, 1] } },
        color: { field: 'recipe', type: 'nominal' }, tooltip: [{ field: 'recipe' }, { field: 'class' }, { field: 'iou', format: '.4f' }],
      },
    } as TopLevelSpec]);
  }
  // The per-layer numerics open the report, right after the table: the error scales and their
  // underflow, then each quantized run's error distribution against the formats' ranges (where
  // the numerics lab looked at it).
  const numericsCharts: [string, TopLevelSpec][] = [];
  if (numerics.length) {
    numericsCharts.push(
      ['Error (gradient) scale per layer and step, log2', layerHeatmap(numerics, 'log2_scale', 'log2 scale', layers, 'viridis')],
      ['Share of nonzero errors that underflowed to zero, per layer and step', layerHeatmap(numerics, 'underflow', 'underflow', layers, 'orangered')],
    );
  }
  for (const { recipe, out, result } of entries) {
    const file = join(out, STATS_FILE);
    if (!result.config.recipe.errors || !existsSync(file)) continue;
    const shown = lastDistribution(readStats(file), 'errors');
    if (shown) numericsCharts.push([`${recipe}: errors at step ${shown.step} against the formats' ranges (|x * scale| by binade, per layer)`, shown.spec]);
  }
  const render = (list: [string, TopLevelSpec][]) => Promise.all(list.map(async ([title, spec]) => `<h2>${escape(title)}</h2>\n${await svg(spec)}`));
  const renderedNumerics = await render(numericsCharts);
  const rendered = await render(charts);
  const first = baselineOf(summary);
  const hasPixel = summary.results.some((r) => r.pixel_accuracy !== undefined);
  const rows = summary.results
    .map((r, i) => {
      const delta = r === first ? '' : pointsText(r.value - first.value);
      const page = join(entries[i].out, STATS_PAGE);
      const stats = existsSync(page) ? `<a href="${escape(relative(dir, page))}">numerics</a>` : '';
      return `<tr><td>${escape(r.recipe)}</td><td>${(100 * r.value).toFixed(2)}%</td><td>${delta}</td>${r.top5 !== undefined ? `<td>${(100 * r.top5).toFixed(2)}%</td>` : ''}` +
        `${hasPixel ? `<td>${r.pixel_accuracy !== undefined ? `${(100 * r.pixel_accuracy).toFixed(2)}%` : ''}</td>` : ''}` +
        `<td>${r.epochs}</td><td>${r.seconds.toFixed(1)}</td><td>${r.images_per_s.toFixed(1)}</td><td>${stats}</td></tr>`;
    })
    .join('\n');
  const hasTop5 = summary.results.some((r) => r.top5 !== undefined);
  const settings = entries.map((e) => recipeRows(e.result.config.recipe));
  const recipeTable = `<table><tr><th>setting</th>${entries.map((e) => `<th>${escape(e.recipe)}</th>`).join('')}</tr>` +
    settings[0].map(([name], k) => `<tr><td>${escape(name)}</td>${settings.map((rows) => `<td style="text-align:left">${escape(rows[k][1])}</td>`).join('')}</tr>`).join('') +
    '</table>';
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>Octet: ${escape(summary.model)} on ${escape(summary.data)}</title>
<style>${PAGE_STYLE}</style>
</head><body>
<h1>${escape(summary.model)} on ${escape(summary.data)}</h1>
<table><tr><th>recipe</th><th>${metricName}</th><th>points vs ${escape(first.recipe)}</th>${hasTop5 ? '<th>top-5</th>' : ''}${hasPixel ? '<th>pixel accuracy</th>' : ''}<th>epochs</th><th>seconds</th><th>images/s</th><th>stats</th></tr>
${rows}
</table>
<table>${entries.map((e) => `<tr><td>${escape(e.recipe)}</td><td style="text-align:left">${escape(recipeLine(e.result.config.recipe))}</td></tr>`).join('')}</table>
${renderedNumerics.join('\n')}
<h2>The run</h2>
${rowsTable(configRows(entries[0].result))}
<h2>The recipes</h2>
${recipeTable}
${rendered.join('\n')}
</body></html>
`;
  const file = join(dir, 'report.html');
  writeFileAtomic(file, new TextEncoder().encode(html));
  return file;
}
