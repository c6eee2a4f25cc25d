/**
 * QTensor: a tensor stored as codes of a low-precision format plus a scale, so that FP8 data
 * takes one byte per element. The real value of element i is decode(codes[i]) / scale.
 */
import { InvalidArgumentError } from '../errors.js';
import { resolveFormat, type CastOptions, type CodeArray, type Format, type FormatLike } from '../formats/index.js';
import { dequantize, encode } from '../kernels/index.js';
import { formatShape, shapeSize, type Shape } from './shape.js';
import { Tensor } from './tensor.js';

export class QTensor {
  readonly shape: readonly number[];
  readonly codes: CodeArray;
  readonly format: Format;
  readonly scale: number;

  constructor(codes: CodeArray, shape: Shape, format: FormatLike, scale = 1) {
    const f = resolveFormat(format);
    if (codes.length !== shapeSize(shape)) {
      throw new InvalidArgumentError(`QTensor: ${codes.length} codes do not fill shape ${formatShape(shape)}`);
    }
    if (!(Number.isFinite(scale) && scale > 0)) {
      throw new InvalidArgumentError(`QTensor: scale is ${scale}; expected a finite positive number`);
    }
    this.codes = codes;
    this.shape = Object.freeze([...shape]);
    this.format = f;
    this.scale = scale;
  }

  /** Quantize x * scale to `format`. */
  static quantize(x: Tensor, format: FormatLike, scale = 1, options: CastOptions = {}): QTensor {
    const f = resolveFormat(format);
    let values = x.data;
    if (scale !== 1) {
      values = new Float32Array(x.data.length);
      for (let i = 0; i < values.length; i++) values[i] = x.data[i] * scale;
    }
    return new QTensor(encode(values, f, options), x.shape, f, scale);
  }

  /** The real values, decode(code) / scale, as a float32 tensor. */
  dequantize(): Tensor {
    return new Tensor(dequantize(this.codes, this.format, this.scale), this.shape);
  }

  get size(): number {
    return this.codes.length;
  }

  /** Bytes the codes occupy. */
  get byteLength(): number {
    return this.codes.byteLength;
  }
}
