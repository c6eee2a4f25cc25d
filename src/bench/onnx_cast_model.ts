/**
 * A one-node-pair ONNX model, float32 -> Cast(to=T, saturate=S) -> Cast(to=float32), written as
 * protobuf by hand (fields of onnx.proto3: ModelProto, GraphProto, NodeProto, AttributeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto). ONNX Runtime runs it as an independent oracle
 * for the codec (tests) and as a speed peer (benchmarks).
 */
/** ONNX TensorProto.DataType values. */
export const ONNX_TYPE = {
  float: 1,
  float16: 10,
  bfloat16: 16,
  float8e4m3fn: 17,
  float8e4m3fnuz: 18,
  float8e5m2: 19,
  float8e5m2fnuz: 20,
  float4e2m1: 23,
} as const;

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function key(field: number, wireType: number): number[] {
  return varint(field * 8 + wireType);
}

function intField(field: number, value: number): number[] {
  return [...key(field, 0), ...varint(value)];
}

function bytesField(field: number, payload: number[]): number[] {
  return [...key(field, 2), ...varint(payload.length), ...payload];
}

function stringField(field: number, text: string): number[] {
  return bytesField(field, [...Buffer.from(text, 'utf8')]);
}

function intAttribute(name: string, value: number): number[] {
  // AttributeProto: name = 1, i = 3, type = 20 (INT = 2)
  return [...stringField(1, name), ...intField(3, value), ...intField(20, 2)];
}

function castNode(input: string, output: string, to: number, saturate: boolean | null): number[] {
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5
  const attributes = [bytesField(5, intAttribute('to', to))];
  if (saturate !== null) attributes.push(bytesField(5, intAttribute('saturate', saturate ? 1 : 0)));
  return [
    ...stringField(1, input),
    ...stringField(2, output),
    ...stringField(3, `cast_${output}`),
    ...stringField(4, 'Cast'),
    ...attributes.flat(),
  ];
}

function floatVector(name: string, length: number): number[] {
  // ValueInfoProto{name = 1, type = 2}; TypeProto{tensor_type = 1}; Tensor{elem_type = 1,
  // shape = 2}; TensorShapeProto{dim = 1}; Dimension{dim_value = 1}
  const shape = bytesField(1, intField(1, length));
  const tensorType = [...intField(1, ONNX_TYPE.float), ...bytesField(2, shape)];
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

/** Bytes of an ONNX model that casts a float32 vector of `length` to `to` and back. */
export function castRoundTripModel(to: number, saturate: boolean | null, length: number): Uint8Array {
  const graph = [
    ...bytesField(1, castNode('x', 'low', to, saturate)),
    ...bytesField(1, castNode('low', 'y', ONNX_TYPE.float, null)),
    ...stringField(2, 'cast_round_trip'),
    ...bytesField(11, floatVector('x', length)),
    ...bytesField(12, floatVector('y', length)),
  ];
  // ModelProto: ir_version = 1, graph = 7, opset_import = 8 (OperatorSetIdProto{domain = 1,
  // version = 2}); opset 19 is the first with FP8 types and the saturate attribute.
  const model = [...intField(1, 9), ...bytesField(7, graph), ...bytesField(8, intField(2, 19))];
  return Uint8Array.from(model);
}
