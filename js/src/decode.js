/**
 * Buffer decoding: turn what the widget model hands us (DataView, ArrayBuffer,
 * typed array, or nothing) into typed arrays of the right kind.
 *
 * Why copy sometimes: Jupyter delivers buffers as DataViews into one websocket
 * message, at any byte offset; a Float32Array needs a 4-byte aligned offset,
 * so unaligned views are copied once.
 */

/** Bytes of any buffer-like value as a Uint8Array view (no copy). */
export function asBytes(value) {
  if (value == null) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`expected binary data, got ${typeof value}`);
}

/**
 * View `value` as an array of `Type` (Float32Array, Uint16Array, Uint32Array...),
 * copying only when the offset is not aligned. Throws when the byte length is
 * not a whole number of elements, so a truncated buffer fails loudly.
 */
export function asTyped(value, Type) {
  const bytes = asBytes(value);
  const size = Type.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(
      `buffer of ${bytes.byteLength} bytes is not a whole number of ${Type.name} elements`,
    );
  }
  if (bytes.byteOffset % size === 0) {
    return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  }
  return new Type(bytes.slice().buffer);
}

/** Class indices: uint8 when there are at most 256 classes, else uint16. */
export function decodeClasses(value, nClasses) {
  return nClasses > 256 ? asTyped(value, Uint16Array) : asTyped(value, Uint8Array);
}

/** Probabilities quantised to uint16 (p * 65535) back to floats in [0, 1]. */
export function decodeProbabilities(value) {
  const q = asTyped(value, Uint16Array);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i] / 65535;
  return out;
}

/** Sample indices as a uint32 buffer, the wire form of `selected`. */
export function decodeIndices(value) {
  if (Array.isArray(value)) return Uint32Array.from(value);
  return asTyped(value, Uint32Array);
}

/** Encode indices for `model.set("selected", ...)`: sorted, unique, uint32. */
export function encodeIndices(indices) {
  const arr = Uint32Array.from(indices);
  arr.sort();
  let n = 0;
  for (let i = 0; i < arr.length; i++) {
    if (i === 0 || arr[i] !== arr[i - 1]) arr[n++] = arr[i];
  }
  return new DataView(arr.buffer, 0, n * 4);
}

/**
 * Decode one epoch's child-model state into typed arrays.
 * `get(name)` reads a trait (child.get bound), `n` is the displayed point count.
 */
export function decodeEpoch(get, n, nClasses) {
  const positions = asTyped(get("positions"), Float32Array);
  if (positions.length !== 2 * n) {
    throw new RangeError(`epoch ${get("epoch")}: ${positions.length / 2} positions for ${n} points`);
  }
  const predictions = decodeClasses(get("predictions"), nClasses);
  const confidence = decodeProbabilities(get("confidence"));
  const labelProb = decodeProbabilities(get("label_prob"));
  for (const [name, arr] of [["predictions", predictions], ["confidence", confidence], ["label_prob", labelProb]]) {
    if (arr.length !== n) throw new RangeError(`epoch ${get("epoch")}: ${name} has ${arr.length} values for ${n} points`);
  }
  return {
    epoch: get("epoch"),
    positions,
    predictions,
    confidence,
    labelProb,
    background: asBytes(get("background")),
    backgroundExtent: get("background_extent") || null,
    metrics: get("metrics") || {},
  };
}
