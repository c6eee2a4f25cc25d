/**
 * Compare an op's gradients with central finite differences. The scalar checked is
 * L = sum(f(inputs) * w) for fixed random weights w, summed in double precision; each checked
 * element x gets (L(x + eps) - L(x - eps)) / (2 eps) against the analytic dL/dx.
 */
import { Generator, Tensor } from '../tensor/index.js';
import { backward } from './backward.js';
import { noGrad } from './graph.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** At most this many elements per input are checked (spread evenly); default 200. */
  maxChecks?: number;
  seed?: number;
}

export interface GradcheckFailure {
  input: number;
  index: number;
  analytic: number;
  numeric: number;
}

export interface GradcheckResult {
  ok: boolean;
  checked: number;
  maxAbsError: number;
  failures: GradcheckFailure[];
}

function weightedSum(out: Tensor, w: Float32Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += out.data[i] * w[i];
  return s;
}

export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): GradcheckResult {
  const eps = options.eps ?? 1e-2;
  const atol = options.atol ?? 2e-3;
  const rtol = options.rtol ?? 2e-2;
  const maxChecks = options.maxChecks ?? 200;
  const generator = new Generator(options.seed ?? 1);
  for (const t of inputs) t.grad = null;
  const out = fn(...inputs);
  const w = Float32Array.from({ length: out.size }, () => generator.uniform() * 2 - 1);
  backward(out, { gradient: new Tensor(Float32Array.from(w), out.shape) });
  const result: GradcheckResult = { ok: true, checked: 0, maxAbsError: 0, failures: [] };
  inputs.forEach((input, k) => {
    if (!input.requiresGrad) return;
    const analytic = input.grad?.data ?? new Float32Array(input.size);
    const step = Math.max(1, Math.floor(input.size / maxChecks));
    for (let index = 0; index < input.size; index += step) {
      const original = input.data[index];
      input.data[index] = original + eps;
      const plus = noGrad(() => weightedSum(fn(...inputs), w));
      input.data[index] = original - eps;
      const minus = noGrad(() => weightedSum(fn(...inputs), w));
      input.data[index] = original;
      // The actual step, since original +- eps is rounded to float32.
      const numeric = (plus - minus) / (Math.fround(original + eps) - Math.fround(original - eps));
      const error = Math.abs(analytic[index] - numeric);
      result.checked++;
      result.maxAbsError = Math.max(result.maxAbsError, error);
      if (!(error <= atol + rtol * Math.abs(numeric))) {
        result.ok = false;
        if (result.failures.length < 10) result.failures.push({ input: k, index, analytic: analytic[index], numeric });
      }
    }
  });
  return result;
}
