/**
 * Gradient rules, registered as a table keyed by op name. A rule receives the node the op
 * recorded, the gradient of the output, and the output's handle (its shape), and returns one gradient per
 * input (null where an input needs none). Rules compute plain arrays: there is no
 * higher-order differentiation.
 */
import { OctetError } from '../errors.js';
import type { GradHandle } from '../tensor/index.js';
import type { GradNode } from './graph.js';

export type GradRule<Saved = unknown> = (
  node: GradNode<Saved>,
  gradOutput: Float32Array,
  output: GradHandle,
) => readonly (Float32Array | null)[];

const rules = new Map<string, GradRule>();

export function registerGradient<Saved>(op: string, rule: GradRule<Saved>): void {
  if (rules.has(op)) throw new OctetError('DUPLICATE_GRADIENT', `a gradient rule for op "${op}" is already registered`);
  rules.set(op, rule as GradRule);
}

export function gradientRule(op: string): GradRule {
  const rule = rules.get(op);
  if (!rule) {
    throw new OctetError('NO_GRADIENT', `no gradient rule is registered for op "${op}"; import its module from src/ops`);
  }
  return rule;
}

export function registeredOps(): string[] {
  return [...rules.keys()].sort();
}
