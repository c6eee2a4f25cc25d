/**
 * Pruned convolutions on the block-sparse kernel, where it is faster (inference).
 *
 * `useSparseInference` gives each pruned 2-D convolution (one group) whose compute is float32 a
 * compute that, when no gradient is recorded, runs the forward product as bsrConv2dForward on the
 * layer's pruned weight (stored in BSR once per weight version) and adds the bias; when a
 * gradient is recorded (training) it runs the layer's own compute. Whether the sparse product is
 * faster is measured, not guessed: at the first call with a given input shape both products run
 * twice and the faster one serves that shape from then on (`SparseLayerChoice` records it; `always` skips the measurement).
 *
 * Values: the sparse product is the dense direct product's chain with the pruned products left
 * out (src/kernels/block_sparse.ts). Float32 3x3 stride-1 convolutions default to Winograd, whose
 * rounding differs in the last bits, so a pruned model evaluated this way can differ from its
 * dense evaluation by that rounding; with `--conv direct` the dense path is the same chain.
 */
import { isGradEnabled } from '../autograd/index.js';
import { bsrConv2dForward, bsrFromDense, channelBiasAdd, convGeometry, groupColumns, type BsrMatrix } from '../kernels/index.js';
import { GemmLayer, type GemmCompute, type Module } from '../nn/index.js';
import { Tensor } from '../tensor/index.js';
import { maskGrid, parseBlockShape } from './mask.js';

export interface SparseLayerChoice {
  layer: string;
  input: number[];
  denseMs: number;
  sparseMs: number;
  sparse: boolean;
}

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Pruned convolutions of `model` (keep patterns by parameter name, as checkpoints hold them, in
 * `block` blocks) on the sparse kernel where measured faster. Returns the record of choices,
 * filled as shapes are first seen.
 */
export function useSparseInference(
  model: Module, masks: ReadonlyMap<string, Uint8Array>, block: string, options: { always?: boolean } = {},
): SparseLayerChoice[] {
  const shape = parseBlockShape(block);
  const choices: SparseLayerChoice[] = [];
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof GemmLayer) || m.product.kind !== 'conv2d' || (m.product.options.groups ?? 1) !== 1 || m.compute.name !== 'float32') continue;
    const keep = masks.get(`${path}.weight`);
    if (!keep) continue;
    const inner = m.compute;
    const rows = m.weight.shape[0], cols = m.weight.size / rows;
    const { br, bc } = maskGrid(rows, cols, shape);
    let bsr: BsrMatrix | null = null;
    let version: Float32Array | null = null;
    const decided = new Map<string, boolean>();
    const compute: GemmCompute = {
      name: 'float32',
      run: (x, weight, bias, product) => {
        if (isGradEnabled() || product.kind !== 'conv2d') return inner.run(x, weight, bias, product);
        if (!bsr || version !== weight.data) {
          bsr = bsrFromDense(weight.data, rows, cols, br, bc, keep);
          version = weight.data;
        }
        const geo = convGeometry(x.shape, weight.shape, product.options);
        const sparse = () => {
          const y = bsrConv2dForward(bsr!, x.data, groupColumns(geo), geo.batch);
          if (bias) channelBiasAdd(y, bias.data, { batch: geo.batch, channels: rows, plane: geo.outH * geo.outW });
          return new Tensor(y, [geo.batch, rows, geo.outH, geo.outW]);
        };
        const key = x.shape.join('x');
        let useSparse = decided.get(key);
        if (useSparse === undefined && options.always) {
          useSparse = true;
          decided.set(key, true);
          choices.push({ layer: path, input: [...x.shape], denseMs: NaN, sparseMs: NaN, sparse: true });
        }
        if (useSparse === undefined) {
          const denseMs = Math.min(timed(() => inner.run(x, weight, bias, product)), timed(() => inner.run(x, weight, bias, product)));
          const sparseMs = Math.min(timed(sparse), timed(sparse));
          useSparse = sparseMs < denseMs;
          decided.set(key, useSparse);
          choices.push({ layer: path, input: [...x.shape], denseMs, sparseMs, sparse: useSparse });
        }
        return useSparse ? sparse() : inner.run(x, weight, bias, product);
      },
    };
    m.compute = compute;
  }
  return choices;
}
