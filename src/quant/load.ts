/** Load a recipe by preset name or from a JSON file. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';
import { presetNames, presetRecipe } from './presets.js';
import { parseRecipe, type Recipe } from './recipe.js';

export function loadRecipe(nameOrPath: string): Recipe {
  if (presetNames().includes(nameOrPath)) return presetRecipe(nameOrPath);
  if (!nameOrPath.endsWith('.json')) return presetRecipe(nameOrPath);
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`recipe file ${nameOrPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the path`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`recipe file ${nameOrPath} is not valid JSON: ${(error as Error).message}`);
  }
  return parseRecipe(json, `recipe file ${nameOrPath}`);
}
