'use strict';
// Builds, in memory, an ONNX model with one ConvTranspose node (weight and bias as initializers, the
// input as the only graph input) for onnxruntime-node. A minimal protobuf writer covers the handful of
// messages needed (field numbers from onnx/onnx.proto): no dependency.

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** Accumulates protobuf fields of one message. */
class Msg {
  constructor() { this.parts = []; }

  bytes() { return Buffer.concat(this.parts); }

  tag(field, wire) { this.parts.push(varint(field * 8 + wire)); }

  /** Non-negative integer field (int32/int64/enum), varint-encoded. */
  int(field, v) {
    this.tag(field, WIRE_VARINT);
    this.parts.push(varint(v));
    return this;
  }

  /** Repeated integers, unpacked (proto2's default for onnx.proto). */
  ints(field, vs) {
    for (const v of vs) this.int(field, v);
    return this;
  }

  /** Length-delimited field: a string, bytes, or an embedded message (a Msg). */
  len(field, payload) {
    let buf;
    if (payload instanceof Msg) buf = payload.bytes();
    else if (typeof payload === 'string') buf = Buffer.from(payload, 'utf8');
    else buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.tag(field, WIRE_LEN);
    this.parts.push(varint(buf.length), buf);
    return this;
  }
}

function varint(v) {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint: unsupported value ${v}`);
  const out = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

const ONNX_FLOAT = 1;
const ONNX_DOUBLE = 11;
const ATTR_INT = 2;
const ATTR_INTS = 7;

// TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian element bytes).
function tensorProto(name, dims, data) {
  const m = new Msg().ints(1, dims).int(2, data instanceof Float64Array ? ONNX_DOUBLE : ONNX_FLOAT).len(8, name);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('big-endian host: raw_data needs a byte swap');
  return m.len(9, data);
}

// AttributeProto: name = 1, i = 3, ints = 8, type = 20.
function attrInt(name, v) { return new Msg().len(1, name).int(3, v).int(20, ATTR_INT); }
function attrInts(name, vs) { return new Msg().len(1, name).ints(8, vs).int(20, ATTR_INTS); }

// ValueInfoProto { name = 1, type = 2: TypeProto { tensor_type = 1: { elem_type = 1, shape = 2:
// TensorShapeProto { dim = 1: { dim_value = 1 } } } } }
function valueInfo(name, elemType, dims) {
  const shape = new Msg();
  for (const d of dims) shape.len(1, new Msg().int(1, d));
  const tensorType = new Msg().int(1, elemType).len(2, shape);
  return new Msg().len(1, name).len(2, new Msg().len(1, tensorType));
}

/**
 * Serialized ModelProto (ir_version 8, default-domain opset 17) computing
 * y = ConvTranspose(x, W, B) with PyTorch's parameters of `sh` (see common.describe).
 * `w` has PyTorch's (and ONNX's) layout (Cin, Cout/groups, kH, kW); `b` may be null.
 */
function convTransposeModel(sh, w, b) {
  const elemType = w instanceof Float64Array ? ONNX_DOUBLE : ONNX_FLOAT;
  // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
  const node = new Msg().len(1, 'x').len(1, 'W');
  if (b) node.len(1, 'B');
  node.len(2, 'y').len(3, 'convt').len(4, 'ConvTranspose');
  node.len(5, attrInts('kernel_shape', [sh.kH, sh.kW]));
  node.len(5, attrInts('strides', [sh.sH, sh.sW]));
  node.len(5, attrInts('pads', [sh.pH, sh.pW, sh.pH, sh.pW]));
  node.len(5, attrInts('dilations', [sh.dH, sh.dW]));
  node.len(5, attrInts('output_padding', [sh.opH, sh.opW]));
  node.len(5, attrInt('group', sh.groups));
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
  const graph = new Msg().len(1, node).len(2, `convt_${sh.id}`);
  graph.len(5, tensorProto('W', sh.weightShape, w));
  if (b) graph.len(5, tensorProto('B', [sh.Cout], b));
  graph.len(11, valueInfo('x', elemType, sh.inputShape));
  graph.len(12, valueInfo('y', elemType, sh.outputShape));
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 (OperatorSetIdProto: domain = 1, version = 2).
  const model = new Msg().int(1, 8).len(2, 'conv-transpose-bench').len(7, graph).len(8, new Msg().len(1, '').int(2, 17));
  return new Uint8Array(model.bytes());
}

module.exports = { convTransposeModel };
