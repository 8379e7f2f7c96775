/**
 * Model/trait sync: everything between the page and the widget model. Reads
 * the static data and the view options as plain values, calls handlers when
 * Python changes a trait, and writes only the traits the page may write
 * (protocol.js BROWSER_WRITABLE). The model is used only through get / set /
 * on / off / save_changes, so the offline export's stand-in model drives it too.
 */
import { asBytes, asTyped, decodeClasses, decodeIndices, encodeIndices, readMeta, BROWSER_WRITABLE } from "./protocol.js";
import { parseHex } from "./colors.js";
import { DYNAMICS_COLUMNS } from "./dynamics.js";

/** View options: state key -> [trait, from trait value, to trait value]. */
export const OPTIONS = {
  // a class colouring or a training-dynamics column (meta in dynamics_info; Python validates the name)
  colorBy: ["color_by", (v) => (["label", "prediction", "correct", ...DYNAMICS_COLUMNS].includes(v) ? v : "label"), (v) => v],
  split: ["split_filter", (v) => (["both", "train", "test"].includes(v) ? v : "both"), (v) => v],
  hidden: ["hidden_classes", (v) => new Set(Array.isArray(v) ? v : []), (s) => [...s].sort((a, b) => a - b)],
  onlyMisclassified: ["only_misclassified", (v) => !!v, (v) => !!v],
  onlyFlipped: ["only_flipped", (v) => !!v, (v) => !!v],
  trails: ["show_trails", (v) => !!v, (v) => !!v],
  pointSize: ["point_size", (v) => (Number.isFinite(v) && v > 0 ? v : 1), (v) => v],
  dynFilter: ["dynamics_filter", (v) => (v && typeof v === "object" && v.column ? v : null), (v) => v || {}],
  pointOpacity: ["point_opacity", (v) => (Number.isFinite(v) && v > 0 ? v : null), (v) => v],
};

/** The run's static data as plain arrays (labels, split, index map, colours, thumbnails). */
export function readStatic(model) {
  const meta = readMeta(model.get("meta"));
  const classes = meta.classes;
  const labels = decodeClasses(model.get("labels"), classes.length);
  const n = labels.length;
  const split = asBytes(model.get("split"));
  const idx = asTyped(model.get("indices"), Uint32Array);
  const indices = idx.length === n ? idx : null; // null: display position == global index
  const nSamples = Math.max(meta.n_samples, n);
  const localOf = new Int32Array(nSamples).fill(-1);
  for (let i = 0; i < n; i++) localOf[indices ? indices[i] : i] = i;
  return {
    meta,
    classes,
    classRGB: classes.map((_, c) => (meta.colors[c] ? parseHex(meta.colors[c]) : [128, 128, 128])),
    labels,
    n,
    nSamples,
    isTest: split.length === n ? split : new Uint8Array(n),
    indices,
    localOf,
    thumbBytes: asBytes(model.get("thumbnails")),
    globalIndex: (i) => (indices ? indices[i] : i),
  };
}

export class ModelSync {
  constructor(model) {
    this.model = model;
    this.offs = [];
    this.viewTimer = null;
  }

  /** Current view options as plain values (see OPTIONS). */
  options() {
    const out = {};
    for (const [key, [trait, from]] of Object.entries(OPTIONS)) out[key] = from(this.model.get(trait));
    return out;
  }

  option(key) {
    const [trait, from] = OPTIONS[key];
    return from(this.model.get(trait));
  }

  epoch() {
    return this.model.get("epoch");
  }

  selected() {
    return decodeIndices(this.model.get("selected"));
  }

  view() {
    const v = this.model.get("view");
    return v && Number.isFinite(v.cx) && Number.isFinite(v.cy) ? { cx: v.cx, cy: v.cy, zoom: Number.isFinite(v.zoom) && v.zoom > 0 ? v.zoom : 1 } : null;
  }

  /**
   * Call handlers on Python's changes: {epochData(), epoch(e), selected(), option(key, value), view(v), meta()}.
   * `guard(fn)` wraps each call (errors are shown in the cell).
   */
  bind(handlers, guard = (fn) => fn()) {
    const on = (trait, fn) => {
      const cb = () => guard(fn);
      this.model.on(`change:${trait}`, cb);
      this.offs.push(() => this.model.off && this.model.off(`change:${trait}`, cb));
    };
    on("epoch_data", () => handlers.epochData());
    on("epoch", () => handlers.epoch(this.epoch()));
    on("selected", () => handlers.selected());
    on("view", () => handlers.view(this.view()));
    on("meta", () => handlers.meta());
    on("dynamics", () => handlers.dynamics());
    for (const key of Object.keys(OPTIONS)) on(OPTIONS[key][0], () => handlers.option(key, this.option(key)));
  }

  _write(trait, value) {
    if (!BROWSER_WRITABLE.has(trait)) throw new Error(`the page may not write trait ${trait}`);
    this.model.set(trait, value);
    this.model.save_changes();
  }

  /** Mirror a view option (state key) to its trait. */
  setOption(key, value) {
    const [trait, , to] = OPTIONS[key];
    this._write(trait, to(value));
  }

  setEpoch(e) {
    if (this.model.get("epoch") !== e) this._write("epoch", e);
  }

  setSelected(globals) {
    this._write("selected", encodeIndices(globals));
  }

  /** Save the view ({} = fitted) once panning or zooming settles. */
  saveView(v, delay = 250) {
    clearTimeout(this.viewTimer);
    const write = () => this._write("view", v ? { cx: v.cx, cy: v.cy, zoom: v.zoom } : {});
    if (delay <= 0) write();
    else this.viewTimer = setTimeout(write, delay);
  }

  dispose() {
    clearTimeout(this.viewTimer);
    for (const off of this.offs) off();
    this.offs = [];
  }
}
