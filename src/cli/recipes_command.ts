/** `octet recipes`: the preset recipes, and one of them as the JSON a recipe file starts from. */
import { PRESET_RECIPES, presetRecipe } from '../quant/index.js';
import type { CliIo } from './io.js';
import { renderTable } from './text_table.js';

export function recipesCommand(options: { json?: boolean }, io: CliIo): void {
  if (options.json) {
    io.stdout(JSON.stringify(PRESET_RECIPES.map((r) => ({ name: r.name, description: r.description, recipe: r })), null, 2) + '\n');
    return;
  }
  const cls = (spec: { format: string } | null) => spec?.format ?? 'fp32';
  const rows = PRESET_RECIPES.map((r) => [
    r.name,
    cls(r.weights),
    cls(r.activations),
    cls(r.errors),
    cls(r.weightGradients),
    r.accumulation.format + (r.accumulation.chunk ? `/${r.accumulation.chunk}` : ''),
    r.errors?.scaling.mode === 'dynamic' ? 'per-layer' : r.lossScaling.mode === 'none' ? '-' : `loss ${r.lossScaling.mode}`,
    `${r.masterWeights.format}${r.masterWeights.rounding === 'stochastic' ? ' (SR)' : ''}`,
  ]);
  io.stdout(renderTable(['recipe', 'weights', 'activations', 'errors', 'weight grads', 'accumulate', 'grad scaling', 'master'], rows));
  for (const r of PRESET_RECIPES) io.stdout(`\n${r.name}: ${r.description}`);
  io.stdout('\n\nStart a recipe file from a preset: octet recipes show fp8 > my_recipe.json; use it with --recipe my_recipe.json\n');
}

export function recipeShowCommand(name: string, io: CliIo): void {
  io.stdout(JSON.stringify(presetRecipe(name), null, 2) + '\n');
}
