/**
 * Frame composition: from the epoch(s) shown, the view and the options to
 * what the renderer draws: screen positions, visibility, colours, draw order,
 * point radius and opacity (style.json rules). The pure parts (`pointStyle`,
 * `buildPasses`) are tested in node; `FrameComposer` keeps the buffers and
 * recomputes colours and order only when their inputs change.
 */
import { projectAll, projectLerp } from "./view.js";
import { visibilityMask } from "./filters.js";
import { pack, parseHex, pointColors } from "./colors.js";
import { STYLE, pointRadius, pointOpacity, hasOutline } from "./style.js";
import { applyRangeFilter, dynamicsKey, isStat, statColors } from "./dynamics.js";

const OUTLINE_RGB = parseHex(STYLE.points.outline.color);
const SELECTED_RGB = parseHex(STYLE.points.selected.outline);

/**
 * Radius (CSS px), alpha (0..1) and outline flag for `nVisible` points on a
 * width x height map at `zoom` (relative to the fitted view), with the user's
 * `pointSize` multiplier and `pointOpacity` (null = automatic).
 */
export function pointStyle(nVisible, width, height, zoom, pointSize = 1, pointOpacity_ = null, style = STYLE) {
  const radius = pointRadius(nVisible, width, height, zoom, pointSize, style);
  const alpha = pointOpacity_ != null ? pointOpacity_ : pointOpacity(nVisible, radius, width, height, zoom, style);
  return { radius, alpha, outline: hasOutline(radius, style) };
}

/**
 * Draw passes: unselected points first (dimmed while there is a selection,
 * outlined only when large enough), then the selected ones on top, opaque,
 * with a dark ring. alpha and outline alpha as 0-255 words for raster.js.
 */
export function buildPasses({ n, visible, selMask, colors, wrong, ps, anySelected, style = STYLE }) {
  let nRest = 0, nSel = 0;
  for (let i = 0; i < n; i++) if (visible[i]) selMask[i] ? nSel++ : nRest++;
  const rest = new Uint32Array(nRest), sel = new Uint32Array(nSel);
  for (let i = 0, r = 0, q = 0; i < n; i++) {
    if (!visible[i]) continue;
    if (selMask[i]) sel[q++] = i;
    else rest[r++] = i;
  }
  const a = Math.round(255 * ps.alpha * (anySelected ? style.points.dim : 1));
  const oa = !anySelected && ps.outline ? Math.round(255 * style.points.outline.alpha * ps.alpha) : 0;
  return [
    { order: rest, colors, alpha: Math.max(1, Math.min(255, a)), outline: pack(...OUTLINE_RGB, oa), wrong, selected: false },
    { order: sel, colors, alpha: 255, outline: pack(...SELECTED_RGB, 255), wrong, selected: true },
  ];
}

let composers = 0;

/** 1 where epoch `e` predicts another class than the label (kept on the decoded epoch: computed once). */
export function wrongOf(e, labels) {
  if (!e.wrong || e.wrong.length !== labels.length) {
    const pred = e.predictions, w = new Uint8Array(labels.length);
    for (let i = 0; i < w.length; i++) w[i] = pred[i] !== labels[i] ? 1 : 0;
    e.wrong = w;
  }
  return e.wrong;
}

export class FrameComposer {
  constructor(n) {
    this.n = n;
    this.id = ++composers;
    this.version = 0; // counts recomputations of colours and order (see `drawn`)
    this.xs = new Float32Array(n);
    this.ys = new Float32Array(n);
    this.visible = new Uint8Array(n);
    this.wrong = new Uint8Array(n);
    this.colors = null;
    this.passes = [];
    this.orderKey = null;
    this.nVisible = 0;
  }

  /**
   * Screen positions of epoch `from` gliding to `to` at eased fraction t, under `view` (absolute).
   * With `only` (indices), just those points move (a glide's subset, see `glidePasses`); the
   * others keep their last positions until a frame places them all.
   */
  place(from, to, t, view, width, height, only = null) {
    if (from && to && from !== to && t > 0 && t < 1) projectLerp(view, width, height, from.positions, to.positions, t, this.xs, this.ys, only);
    else projectAll(view, width, height, (t <= 0 && from ? from : to).positions, this.xs, this.ys);
    this.partial = !!only && from !== to && t > 0 && t < 1;
    this.placed = [from, to, t, view, width, height];
  }

  /** Place every point where the last `place` put its subset (a lasso ending mid-glide). */
  placeAll() {
    if (this.partial) this.place(...this.placed);
  }

  /**
   * The passes to draw while points glide: beyond style.json playback.glide_points visible
   * points, every k-th unselected one (k = ceil(visible / glide_points)) and every selected one;
   * null when all are drawn. `indices`: the points the glide frame must place.
   */
  glidePasses(style = STYLE) {
    const max = style.playback.glide_points;
    const [rest, sel] = this.passes;
    if (!rest || !max || rest.order.length <= max) return null;
    if (this.glide && this.glide.of === this.passes) return this.glide;
    const k = Math.ceil(rest.order.length / max);
    const order = new Uint32Array(Math.ceil(rest.order.length / k));
    let m = 0;
    for (let j = 0; j < rest.order.length; j += k) order[m++] = rest.order[j];
    const sub = order.subarray(0, m);
    const indices = new Uint32Array(m + sel.order.length);
    indices.set(sub);
    indices.set(sel.order, m);
    this.glide = { of: this.passes, passes: [{ ...rest, order: sub }, sel], indices, every: k };
    return this.glide;
  }

  /**
   * Visibility, colours and passes for epoch `e` (`order` key kept when nothing changed). data: {labels, isTest, classRGB};
   * opts: the view options; previous: the previous epoch's predictions or null;
   * sel: {mask, size, version}; ps: pointStyle(). Returns true when recomputed.
   */
  order(e, data, opts, previous, sel, ps) {
    const key = [e.epoch, opts.colorBy, opts.split, [...opts.hidden].join(","), opts.onlyMisclassified, opts.onlyFlipped,
      dynamicsKey(data.dynamics, opts.colorBy, opts.dynFilter), sel.size, sel.version, ps.radius.toFixed(3), ps.alpha.toFixed(3), ps.outline].join("|");
    if (key === this.orderKey) return false;
    this.orderKey = key;
    this.version++;
    const pred = e.predictions;
    this.countVisible(e, data, opts, previous); // this.visible for this epoch and these filters (cached)
    // colours by label (or by a statistic) are the same at every epoch: kept across a jump, with
    // the token the rasteriser keys its colour index on (raster.js colorIndex)
    const stat = isStat(opts.colorBy, data.dynamics);
    const colorKey = `${opts.colorBy}|${opts.colorBy === "label" || stat ? "" : e.epoch}|${stat ? dynamicsKey(data.dynamics, opts.colorBy, null) : ""}`;
    if (colorKey !== this.colorKey || !this.colors) {
      this.colorKey = colorKey;
      this.colors = stat
        ? statColors(data.dynamics.values[opts.colorBy], ...data.dynamics.ranges[opts.colorBy], this.colors)
        : pointColors(opts.colorBy, data.classRGB, data.labels, pred, this.colors);
      this.colorToken = {};
    }
    this.wrong = wrongOf(e, data.labels);
    this.passes = buildPasses({ n: this.n, visible: this.visible, selMask: sel.mask, colors: this.colors, wrong: this.wrong, ps, anySelected: sel.size > 0 });
    for (const p of this.passes) p.colorsKey = this.colorToken;
    return true;
  }

  /** Forget the colours too (the data behind them changed: the dynamics trait). */
  resetColors() {
    this.colorKey = null;
    this.reset();
  }

  /**
   * What this composer's colours, visibility and order are: a token that changes whenever
   * `order` recomputed them, even to an equal key (new data behind the same options, e.g. a
   * training statistic recomputed when epochs were added). Frames at rest compare it to keep
   * the picture drawn.
   */
  drawn() {
    return `${this.id}.${this.version}`;
  }

  /** Points passing the filters for epoch `e` (for the radius rule, before `order`). */
  countVisible(e, data, opts, previous) {
    const key = [e.epoch, opts.split, [...opts.hidden].join(","), opts.onlyMisclassified, opts.onlyFlipped,
      dynamicsKey(data.dynamics, "", opts.dynFilter)].join("|");
    if (key === this.countKey) return this.nVisible;
    this.countKey = key;
    const mask = visibilityMask({ labels: data.labels, isTest: data.isTest, predictions: e.predictions, previous }, opts, this.visible);
    applyRangeFilter(mask, data.dynamics, opts.dynFilter);
    let c = 0;
    for (let i = 0; i < mask.length; i++) c += mask[i];
    this.nVisible = c;
    this.orderKey = null;
    return c;
  }

  /** Forget cached visibility and order (the data changed). */
  reset() {
    this.countKey = null;
    this.orderKey = null;
  }
}
