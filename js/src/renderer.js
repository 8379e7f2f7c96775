/**
 * Map renderer. One visible canvas holds map and points: the decision map is
 * painted once (per epoch or view change) into a detached canvas and read back
 * as 32-bit words; each frame copies those words into an ImageData buffer,
 * writes the points into it (no WebGL) and puts it on the canvas, which is
 * opaque. A second canvas on top carries trails, the lasso and the hover and
 * inspector rings, and is hidden while it has nothing to show: without a GPU
 * the browser pays for every layer it composites, per pixel.
 * Coordinates handed in are CSS pixels; the canvases use device pixels.
 */
import { makeStamp, disk, cross, drawPoints, drawPointsRanked, bandOrder } from "./raster.js";
import { toScreen } from "./view.js";
import { STYLE } from "./style.js";

/**
 * Opaque ring-less passes of more than (map pixels / RANKED_FROM) points are
 * drawn by rank (raster.drawPointsRanked: the same picture, a cost that grows
 * with pixels more than with points); smaller ones by stamp, band-sorted.
 */
const RANKED_FROM = 4;

/** Memory for painted maps kept between frames (48 MB: 15 epochs of an 898 x 898 map). */
const MAP_CACHE_BYTES = 48 * 1024 * 1024;

export class MapRenderer {
  constructor(container) {
    this.container = container;
    this.bg = document.createElement("canvas"); // detached: painted, then read back
    this.points = this._canvas("dvi-canvas-points");
    this.overlay = this._canvas("dvi-canvas-overlay");
    this.overlay.style.display = "none";
    this.overlayEmpty = true;
    this.width = 0; // CSS px
    this.height = 0;
    this.dpr = 1;
    this.image = null;
    this.words = null;
    this.bgWords = null;
    this.cache = new Map(); // painted maps, see mapWords
    this.stamps = null;
  }

  _canvas(cls) {
    const c = document.createElement("canvas");
    c.className = `dvi-canvas ${cls}`;
    this.container.append(c);
    return c;
  }

  /**
   * Point radius in CSS px (style.js pointRadius); stamps are rebuilt when the
   * radius in device pixels changes. Selected points and crosses (misclassified)
   * are larger by style.json's extra_radius.
   */
  setRadius(radius) {
    this.radius = radius;
    this._stamps();
  }

  _stamps() {
    if (!this.points.width) return;
    const W = this.points.width, d = this.dpr;
    const P = STYLE.points;
    const r = Math.max(0, Math.round((this.radius || 2) * d));
    const wr = Math.max(1, Math.round(((this.radius || 2) + P.misclassified.extra_radius) * d));
    const sr = Math.max(1, Math.round(((this.radius || 2) + P.selected.extra_radius) * d));
    const swr = Math.max(1, Math.round(((this.radius || 2) + P.misclassified.extra_radius + P.selected.extra_radius) * d));
    const key = [r, wr, sr, swr, W].join("|");
    if (key === this.stampKey) return;
    this.stampKey = key;
    this.stamps = {
      normal: makeStamp(r, disk, W),
      wrong: makeStamp(wr, cross, W),
      selected: makeStamp(sr, disk, W),
      selectedWrong: makeStamp(swr, cross, W),
    };
  }

  /** Match the canvases to the container's size; true when it changed. `ready`: the map has an area. */
  resize() {
    const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
    const cw = this.container.clientWidth, ch = this.container.clientHeight;
    this.ready = cw >= 2 && ch >= 2; // 0 while hidden (a theme switch, a collapsed output)
    if (!this.ready) return false;
    const w = Math.round(cw), h = Math.round(ch);
    if (w === this.width && h === this.height && dpr === this.dpr && this.image) return false;
    this.width = w;
    this.height = h;
    this.dpr = dpr;
    const W = Math.round(w * dpr), H = Math.round(h * dpr);
    for (const c of [this.bg, this.points, this.overlay]) {
      c.width = W;
      c.height = H;
    }
    this.ctxPoints = this.points.getContext("2d", { alpha: false });
    this.pointsDrawn = false;
    this.image = this.ctxPoints.createImageData(W, H);
    this.words = new Uint32Array(this.image.data.buffer);
    this.bgWords = null;
    this.cache.clear();
    this.stampKey = null;
    this._stamps();
    return true;
  }

  /**
   * The map of epoch `e` (its `bitmap` and `backgroundExtent`, first image row at
   * ymax) under `view`, as ImageData words. A few are kept, so a glide's next map
   * can be painted ahead (`prepare`) instead of inside the frame that shows it.
   */
  mapWords(view, e, fill) {
    const W = this.points.width, H = this.points.height;
    const key = [e.epoch, e.bitmap ? 1 : 0, view.cx, view.cy, view.k, W, H, fill].join("|");
    const hit = this.cache.get(key);
    if (hit) return hit;
    const ctx = this.bg.getContext("2d", { willReadFrequently: true });
    if (this.bg.width !== W || this.bg.height !== H) {
      this.bg.width = W;
      this.bg.height = H;
    }
    const d = this.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = fill;
    ctx.fillRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = true;
    if (e.bitmap && e.backgroundExtent) {
      const [x0, x1, y0, y1] = e.backgroundExtent;
      const [sx0, sy0] = toScreen(view, this.width, this.height, x0, y1);
      const [sx1, sy1] = toScreen(view, this.width, this.height, x1, y0);
      ctx.drawImage(e.bitmap, sx0 * d, sy0 * d, (sx1 - sx0) * d, (sy1 - sy0) * d);
    }
    const words = new Uint32Array(ctx.getImageData(0, 0, W, H).data.buffer);
    this.cache.set(key, words);
    // keep as many painted maps as fit in MAP_CACHE_BYTES: a jump to an epoch painted
    // ahead (app.js _paintAhead) copies its words instead of painting and reading back
    while (this.cache.size > this.mapCapacity()) this.cache.delete(this.cache.keys().next().value);
    return words;
  }

  /** How many painted maps are kept (at least 4). */
  mapCapacity() {
    return Math.max(4, Math.floor(MAP_CACHE_BYTES / Math.max(1, this.points.width * this.points.height * 4)));
  }

  /** True when epoch `e`'s map under `view` is painted already. */
  hasMap(view, e, fill) {
    const W = this.points.width, H = this.points.height;
    return this.cache.has([e.epoch, e.bitmap ? 1 : 0, view.cx, view.cy, view.k, W, H, fill].join("|"));
  }

  /** Show epoch `e`'s map under `view` behind the points from the next frame on. */
  drawBackground(view, e, fill) {
    this.bgWords = this.mapWords(view, e, fill);
  }

  /** Paint epoch `e`'s map ahead of time (between frames). */
  prepare(view, e, fill) {
    if (view && e && this.image) this.mapWords(view, e, fill);
  }

  /**
   * Points. xs, ys in CSS px; passes: [{order, colors, alpha, outline, wrong, selected}]
   * drawn in sequence (later passes on top); see raster.drawPoints.
   */
  drawPoints(xs, ys, passes) {
    this.compose(this.words, this.bgWords, xs, ys, passes);
    this.ctxPoints.putImageData(this.image, 0, 0);
    this.pointsDrawn = true;
  }

  /** Show words composed earlier (`renderAhead`) as they are. */
  putWords(words) {
    this.words.set(words);
    this.ctxPoints.putImageData(this.image, 0, 0);
    this.pointsDrawn = true;
  }

  /**
   * Compose epoch `e`'s map under `view` and the points (as `drawPoints` takes
   * them) into new words (or `reuse`, an earlier picture's), without showing them: a frame
   * rendered ahead of a jump.
   */
  renderAhead(view, e, fill, xs, ys, passes, reuse = null) {
    const words = reuse && reuse.length === this.words.length ? reuse : new Uint32Array(this.words.length);
    this.compose(words, this.mapWords(view, e, fill), xs, ys, passes);
    return words;
  }

  /** The map words `bg` (or white) and the points on top, into `words`. */
  compose(words, bg, xs, ys, passes) {
    const { dpr, stamps } = this;
    const W = this.points.width, H = this.points.height;
    if (bg && bg.length === words.length) words.set(bg);
    else words.fill(0xffffffff);
    let dxs = xs, dys = ys; // device pixels: the same arrays at a device pixel ratio of 1
    if (dpr !== 1) {
      if (!this.dxs || this.dxs.length !== xs.length) {
        this.dxs = new Float32Array(xs.length);
        this.dys = new Float32Array(xs.length);
      }
      dxs = this.dxs;
      dys = this.dys;
      for (let i = 0; i < xs.length; i++) {
        dxs[i] = xs[i] * dpr;
        dys[i] = ys[i] * dpr;
      }
    }
    for (const p of passes) {
      const [stamp, wrongStamp] = p.selected ? [stamps.selected, stamps.selectedWrong] : [stamps.normal, stamps.wrong];
      if (p.alpha === 255 && p.outline >>> 24 === 0 && p.order.length * RANKED_FROM > W * H) {
        if (!this.scratch || this.scratch.size !== W * H) this.scratch = { size: W * H };
        if (drawPointsRanked(words, W, H, dxs, dys, p.order, p.colors, p.wrong, stamp, wrongStamp, this.scratch, p.colorsKey || p)) continue;
      }
      let order = p.order;
      if (order.length > 5000) {
        if (!this.sorted || this.sorted.length < order.length) this.sorted = new Uint32Array(order.length);
        if (!this.counts || this.counts.length < (H >> 4) + 3) this.counts = new Uint32Array((H >> 4) + 3);
        order = bandOrder(order, dys, H, 4, this.sorted.subarray(0, order.length), this.counts);
      }
      drawPoints(words, W, H, dxs, dys, order, p.colors, p.alpha, p.outline, p.wrong, stamp, wrongStamp);
    }
  }

  /** True while the canvas holds the points drawn last (a resize clears it). */
  hasPoints() {
    return !!this.pointsDrawn;
  }

  /** Overlay: fn(ctx) draws in CSS px; skipped while there is nothing to draw or clear. */
  drawOverlay(fn, empty = false) {
    if (empty && this.overlayEmpty) return;
    this.overlayEmpty = empty;
    this.overlay.style.display = empty ? "none" : "";
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    fn(ctx);
  }
}
