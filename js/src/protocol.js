/**
 * What travels between Python and this bundle: the trait tables and the
 * codecs. The twin of dvi_widget/widget/protocol.py; PROTOCOL.md is the prose
 * version, and tests/protocol_vectors.json holds golden vectors both sides check.
 *
 * Buffers arrive as DataView, ArrayBuffer, typed array or nothing. Jupyter
 * hands DataViews into one websocket message at any byte offset; a
 * Float32Array needs a 4-byte aligned offset, so unaligned views are copied once.
 */

/** Traits of the widget model: [name, wire type, writer]. Writer "both": the page may set it. */
export const WIDGET_TRAITS = [
  ["meta", "json", "python"],
  ["labels", "classes", "python"],
  ["split", "uint8", "python"],
  ["indices", "uint32", "python"],
  ["thumbnails", "uint8", "python"],
  ["epoch_data", "json", "python"],
  ["epoch", "json", "both"],
  ["selected", "uint32", "both"],
  ["color_by", "json", "both"],
  ["split_filter", "json", "both"],
  ["hidden_classes", "json", "both"],
  ["only_misclassified", "json", "both"],
  ["only_flipped", "json", "both"],
  ["show_trails", "json", "both"],
  ["view", "json", "both"],
  ["point_size", "json", "both"],
  ["point_opacity", "json", "both"],
  ["dynamics", "float32", "python"],
  ["dynamics_info", "json", "python"],
  ["dynamics_filter", "json", "both"],
];

/** Traits of an EpochData child model (all written by Python). */
export const EPOCH_TRAITS = [
  ["epoch", "json"],
  ["positions", "float32"],
  ["predictions", "classes"],
  ["confidence", "uint16"],
  ["label_prob", "uint16"],
  ["background", "png"],
  ["background_extent", "json"],
  ["metrics", "json"],
];

/** Traits the page writes (to mirror a control); every other trait is read only. */
export const BROWSER_WRITABLE = new Set(WIDGET_TRAITS.filter((t) => t[2] === "both").map((t) => t[0]));

/** Fields of `meta` the page reads, with their JSON type. */
export const META_FIELDS = {
  classes: "list[str]",
  colors: "list[str]",
  n_samples: "int",
  n_display: "int",
  thumbnail_shape: "{h, w, c} | null",
  extent: "[xmin, xmax, ymin, ymax]",
  live: "bool",
  run_id: "str",
  epochs: "list[int]",
  summary: "{name: float}",
  kernel: "bool",
};

/** Bytes of any buffer-like value as a Uint8Array view (no copy). */
export function asBytes(value) {
  if (value == null) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`expected binary data, got ${typeof value}`);
}

/**
 * View `value` as an array of `Type` (Float32Array, Uint16Array, Uint32Array...),
 * copying only when the offset is not aligned. Throws when the byte length is
 * not a whole number of elements, so a truncated buffer fails loudly.
 * (Little-endian, as every browser and the Python side are.)
 */
export function asTyped(value, Type) {
  const bytes = asBytes(value);
  const size = Type.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`buffer of ${bytes.byteLength} bytes is not a whole number of ${Type.name} elements`);
  }
  if (bytes.byteOffset % size === 0) return new Type(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
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
  for (let i = 0; i < arr.length; i++) if (i === 0 || arr[i] !== arr[i - 1]) arr[n++] = arr[i];
  return new DataView(arr.buffer, 0, n * 4);
}

/** [width, height] from a PNG's header; throws when the bytes are not a PNG. */
export function pngSize(value) {
  const b = asBytes(value);
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const ihdr = b.length >= 24 && String.fromCharCode(b[12], b[13], b[14], b[15]) === "IHDR";
  if (b.length < 24 || sig.some((v, i) => b[i] !== v) || !ihdr) throw new RangeError("not a PNG image");
  const u32 = (o) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  return [u32(16), u32(20)];
}

/**
 * Decode one epoch's child-model state into typed arrays.
 * `get(name)` reads a trait (child.get bound), `n` is the displayed point count.
 */
export function decodeEpoch(get, n, nClasses) {
  const epoch = get("epoch");
  const positions = asTyped(get("positions"), Float32Array);
  if (positions.length !== 2 * n) throw new RangeError(`epoch ${epoch}: ${positions.length / 2} positions for ${n} points`);
  const predictions = decodeClasses(get("predictions"), nClasses);
  const confidence = decodeProbabilities(get("confidence"));
  const labelProb = decodeProbabilities(get("label_prob"));
  for (const [name, arr] of [["predictions", predictions], ["confidence", confidence], ["label_prob", labelProb]]) {
    if (arr.length !== n) throw new RangeError(`epoch ${epoch}: ${name} has ${arr.length} values for ${n} points`);
  }
  const background = asBytes(get("background"));
  if (background.length) pngSize(background); // a map that is not a PNG fails here, named
  return {
    epoch,
    positions,
    predictions,
    confidence,
    labelProb,
    background,
    backgroundExtent: get("background_extent") || null,
    metrics: get("metrics") || {},
  };
}

/** `meta` with every field the page reads present and of the right kind (defaults where absent). */
export function readMeta(meta) {
  const m = meta && typeof meta === "object" ? meta : {};
  const list = (v) => (Array.isArray(v) ? v : []);
  const ext = Array.isArray(m.extent) && m.extent.length === 4 && m.extent.every(Number.isFinite) ? m.extent : [-1, 1, -1, 1];
  const ts = m.thumbnail_shape;
  return {
    classes: list(m.classes).map(String),
    colors: list(m.colors),
    n_samples: Number.isInteger(m.n_samples) ? m.n_samples : 0,
    n_display: Number.isInteger(m.n_display) ? m.n_display : 0,
    thumbnail_shape: ts && Number.isInteger(ts.h) && Number.isInteger(ts.w) && Number.isInteger(ts.c) ? ts : null,
    extent: ext,
    live: !!m.live,
    run_id: typeof m.run_id === "string" ? m.run_id : "",
    epochs: list(m.epochs).filter(Number.isInteger),
    summary: m.summary && typeof m.summary === "object" ? m.summary : {},
    kernel: m.kernel !== false, // false only in the offline export (no kernel answers requests)
  };
}
