/**
 * Applying a recipe to a model: every GEMM layer not kept in float32 gets a quantized compute and
 * its own quantization state; the session owns the loss scaler and the telemetry and turns one
 * backward pass into the set of parameters whose update must be skipped.
 *
 * Per step:  loss -> session.scaleLoss(loss) -> backward -> session.finishBackward() -> skip set
 *            -> optimizer.stepAll(skip).
 */
import { InvalidArgumentError } from '../errors.js';
import { defaultConvAlgorithm, type ConvAlgorithm } from '../kernels/index.js';
import { BatchNorm2d, GemmLayer, float32Compute, type Module } from '../nn/index.js';
import { scale as scaleOp } from '../ops/index.js';
import type { Tensor } from '../tensor/index.js';
import { LayerQuantState, type OperandObserver } from './layer_state.js';
import { recipeCompute } from './quantized_gemm.js';
import { isFloat32Accumulation, type Recipe } from './recipe.js';
import { LossScaler } from './scaling.js';
import { NumericsTelemetry, type TelemetryState } from './telemetry.js';

export interface ApplyOptions {
  /** Seed of every stochastic rounding the recipe does. */
  seed?: number;
  /** Sees every operand handed to a low-precision kernel. */
  observer?: OperandObserver;
  /**
   * How the model's float32 convolutions run (its float32 layers', and an SFP8 backward's):
   * default defaultConvAlgorithm() when the recipe is applied.
   */
  algorithm?: ConvAlgorithm;
}

export interface StepOutcome {
  /** Parameter names whose update must be skipped this step. */
  skip: Set<string>;
  /** Layers that overflowed (per-layer scaling) or "(loss)" (global loss scale). */
  overflowed: string[];
  lossScale: number;
}

export interface SessionState {
  step: number;
  lossScale: { scale: number; cleanSteps: number };
  layers: Record<string, Record<string, unknown>>;
  /** The telemetry interval in progress (absent in checkpoints made before it was kept). */
  telemetry?: TelemetryState;
}

function finite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

export class QuantSession {
  readonly layers: LayerQuantState[] = [];
  readonly telemetry = new NumericsTelemetry();
  readonly lossScaler: LossScaler;
  /** GEMM layers left in float32 by the recipe's highPrecisionLayers. */
  readonly highPrecision: string[] = [];
  readonly algorithm: ConvAlgorithm;
  step = 0;

  constructor(readonly model: Module, readonly recipe: Recipe, options: ApplyOptions = {}) {
    this.algorithm = options.algorithm ?? defaultConvAlgorithm();
    this.lossScaler = new LossScaler(recipe.lossScaling);
    const gemmLayers = model.namedModules().filter((entry): entry is [string, GemmLayer] => entry[1] instanceof GemmLayer);
    const keep = new Set<string>();
    for (const selector of recipe.highPrecisionLayers) {
      if (selector === 'first' && gemmLayers.length) keep.add(gemmLayers[0][0]);
      else if (selector === 'last' && gemmLayers.length) keep.add(gemmLayers[gemmLayers.length - 1][0]);
      else if (gemmLayers.some(([path]) => path === selector)) keep.add(selector);
      else {
        throw new InvalidArgumentError(
          `recipe ${recipe.name}: highPrecisionLayers names "${selector}", which is not a GEMM layer of this model; ` +
            `use first, last or one of: ${gemmLayers.slice(0, 8).map(([p]) => p).join(', ')}${gemmLayers.length > 8 ? ', ...' : ''}`,
        );
      }
    }
    const quantizes = recipe.weights || recipe.activations || recipe.errors || !isFloat32Accumulation(recipe.accumulation.format);
    gemmLayers.forEach(([path, layer], index) => {
      if (keep.has(path) || !quantizes) {
        layer.compute = float32Compute(this.algorithm);
        if (keep.has(path)) this.highPrecision.push(path);
        return;
      }
      const state = new LayerQuantState(path, index, layer, recipe, options.seed ?? 0, this.telemetry, options.observer ?? null, this.algorithm);
      this.layers.push(state);
      layer.compute = recipeCompute(state);
    });
    for (const [, m] of model.namedModules()) if (m instanceof BatchNorm2d) m.savedFormat = recipe.savedActivations;
  }

  /** The loss times the global loss scale (the loss itself when there is none). */
  scaleLoss(loss: Tensor): Tensor {
    const s = this.lossScaler.scale;
    return s === 1 ? loss : scaleOp(loss, s);
  }

  /**
   * After backward: divide gradients by the loss scale, decide which updates to skip, update the
   * loss scale and every layer's error scale, and log what happened.
   */
  finishBackward(): StepOutcome {
    const lossScale = this.lossScaler.scale;
    const params = this.model.namedParameters();
    if (lossScale !== 1) {
      for (const [, p] of params) if (p.grad) for (let i = 0; i < p.grad.data.length; i++) p.grad.data[i] /= lossScale;
    }
    const skip = new Set<string>();
    const overflowed: string[] = [];
    if (this.recipe.lossScaling.mode !== 'none') {
      const overflow = params.some(([, p]) => p.grad !== null && !finite(p.grad.data));
      if (overflow) {
        overflowed.push('(loss)');
        for (const [name] of params) skip.add(name);
        this.telemetry.event(this.step, '(loss)', 'skip', lossScale);
      }
      const event = this.lossScaler.update(overflow);
      if (event) this.telemetry.event(this.step, '(loss)', event, this.lossScaler.scale);
    }
    for (const layer of this.layers) {
      if (layer.overflow) {
        overflowed.push(layer.name);
        skip.add(`${layer.name}.weight`);
        if (layer.layer.bias) skip.add(`${layer.name}.bias`);
        this.telemetry.event(this.step, layer.name, 'skip', layer.errorScale ?? 1);
      }
      const event = layer.endStep();
      if (event) this.telemetry.event(this.step, layer.name, event, layer.errorScale ?? 1);
      layer.overflow = false;
      layer.step++;
    }
    this.step++;
    return { skip, overflowed, lossScale };
  }

  /** Give every layer back its float32 compute (and batch norm its float32 saved input). */
  detach(): void {
    for (const [, m] of this.model.namedModules()) {
      if (m instanceof GemmLayer) m.compute = float32Compute(this.algorithm);
      if (m instanceof BatchNorm2d) m.savedFormat = null;
    }
  }

  state(): SessionState {
    return {
      step: this.step,
      lossScale: this.lossScaler.state(),
      layers: Object.fromEntries(this.layers.map((l) => [l.name, l.state()])),
      telemetry: this.telemetry.state(),
    };
  }

  loadState(state: SessionState): void {
    this.step = state.step;
    this.lossScaler.loadState(state.lossScale);
    if (state.telemetry) this.telemetry.loadState(state.telemetry);
    for (const layer of this.layers) {
      const s = state.layers[layer.name];
      if (s) layer.loadState(s);
      layer.step = state.step;
    }
  }
}

export function applyRecipe(model: Module, recipe: Recipe, options: ApplyOptions = {}): QuantSession {
  return new QuantSession(model, recipe, options);
}
