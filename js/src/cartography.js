/**
 * The data-cartography view (Swayamdipta et al. 2020): a small scatter of
 * every displayed sample's variability (x: std over epochs of p(label)) against
 * its confidence (y: mean p(label)), coloured like the map. A lasso drawn on it
 * selects the same samples as a lasso on the map (the selection is shared), so
 * "the hard-to-learn corner" can be picked here and seen there, and back.
 *
 * Drawing writes points into an ImageData buffer (no per-point canvas calls),
 * like the map's Canvas2D path. Pure geometry (`cartographyLayout`,
 * `toScreen`) is tested in node.
 */
import { h } from "./dom.js";
import { pointsInPolygon } from "./lasso.js";

export const MARGIN = { left: 34, right: 8, top: 8, bottom: 26 };

/** Axis ranges: x = variability from 0 (at least to 0.5, the most p in [0, 1] can vary), y = confidence in [0, 1]. */
export function cartographyLayout(variability) {
  let hi = 0;
  for (let i = 0; i < variability.length; i++) if (variability[i] > hi) hi = variability[i];
  return { x0: 0, x1: Math.max(0.05, Math.min(0.5, hi * 1.05)), y0: 0, y1: 1 };
}

/** Screen coordinates (CSS px) of every point in a width x height plot. */
export function toScreen(variability, confidence, layout, width, height, xs = null, ys = null) {
  const n = variability.length;
  xs = xs && xs.length === n ? xs : new Float32Array(n);
  ys = ys && ys.length === n ? ys : new Float32Array(n);
  const pw = width - MARGIN.left - MARGIN.right, ph = height - MARGIN.top - MARGIN.bottom;
  for (let i = 0; i < n; i++) {
    xs[i] = MARGIN.left + ((variability[i] - layout.x0) / (layout.x1 - layout.x0)) * pw;
    ys[i] = MARGIN.top + (1 - (confidence[i] - layout.y0) / (layout.y1 - layout.y0)) * ph;
  }
  return { xs, ys };
}

export class CartographyView {
  /**
   * el: the container; onLasso(hits, mode): display positions inside a lasso
   * (visible points only), mode "replace" | "add" (shift) | "subtract" (alt).
   */
  constructor(el, onLasso, guard = (fn) => fn()) {
    this.onLasso = onLasso;
    this.canvas = h("canvas", { class: "dvi-carto-canvas", tabindex: "-1", "aria-label": "data cartography: variability (x) against confidence (y); drag to lasso" });
    this.title = h("div", { class: "dvi-carto-title" }, h("b", { text: "cartography" }), " confidence vs variability · drag to lasso");
    el.append(this.title, this.canvas);
    this.el = el;
    this.width = 260;
    this.height = 200;
    this.xs = null;
    this.ys = null;
    this.poly = null;
    this.state = null;
    this.lastLasso = null;
    this.drawnSelected = 0; // selected points drawn in the last frame (tests, the console)
    const pos = (ev) => {
      const r = this.canvas.getBoundingClientRect();
      return [ev.clientX - r.left, ev.clientY - r.top];
    };
    this.canvas.addEventListener("pointerdown", (ev) => guard(() => {
      if (ev.button !== 0 || !this.xs) return;
      ev.preventDefault();
      ev.stopPropagation();
      if (this.canvas.setPointerCapture) this.canvas.setPointerCapture(ev.pointerId);
      this.poly = pos(ev);
      this.mode = ev.shiftKey ? "add" : ev.altKey ? "subtract" : "replace";
      this.draw();
    }));
    this.canvas.addEventListener("pointermove", (ev) => guard(() => {
      if (!this.poly) return;
      this.poly.push(...pos(ev));
      this.draw();
    }));
    const end = (ev) => guard(() => {
      if (!this.poly) return;
      const poly = this.poly;
      this.poly = null;
      this.lastLasso = poly;
      if (poly.length >= 6) {
        const vis = this.state.visible;
        this.onLasso(pointsInPolygon(this.xs, this.ys, poly, (i) => vis[i] === 1), this.mode);
      }
      this.draw();
    });
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", () => ((this.poly = null), this.draw()));
  }

  /**
   * state: {variability, confidence (Float32Array n), colors (Uint32 words),
   * visible (Uint8Array), selMask (Uint8Array), anySelected, dim (0..1),
   * fg (CSS colour for axes), bg}
   */
  update(state) {
    this.state = state;
    this.draw();
  }

  draw() {
    const s = this.state;
    if (!s) return;
    const dpr = window.devicePixelRatio || 1;
    const W = this.width, H = this.height;
    if (this.canvas.width !== Math.round(W * dpr)) {
      this.canvas.width = Math.round(W * dpr);
      this.canvas.height = Math.round(H * dpr);
      this.canvas.style.width = `${W}px`;
      this.canvas.style.height = `${H}px`;
    }
    const layout = cartographyLayout(s.variability);
    const p = toScreen(s.variability, s.confidence, layout, W, H, this.xs, this.ys);
    this.xs = p.xs;
    this.ys = p.ys;
    const ctx = this.canvas.getContext("2d");
    const cw = this.canvas.width, ch = this.canvas.height;
    const img = ctx.createImageData(cw, ch);
    const px = new Uint32Array(img.data.buffer);
    const stamp = (i, r, alpha) => {
      const word = (s.colors[i] & 0x00ffffff) | (alpha << 24);
      const cx = Math.round(this.xs[i] * dpr), cy = Math.round(this.ys[i] * dpr);
      for (let dy = -r; dy <= r; dy++) {
        const y = cy + dy;
        if (y < 0 || y >= ch) continue;
        for (let dx = -r; dx <= r; dx++) {
          const x = cx + dx;
          if (x < 0 || x >= cw || dx * dx + dy * dy > r * r + r) continue;
          px[y * cw + x] = word >>> 0;
        }
      }
    };
    const r = Math.max(1, Math.round(1.5 * dpr));
    const dimAlpha = Math.round(255 * (s.anySelected ? s.dim : 0.85));
    for (let i = 0; i < s.visible.length; i++) if (s.visible[i] && !s.selMask[i]) stamp(i, r, dimAlpha);
    let drawnSelected = 0;
    for (let i = 0; i < s.visible.length; i++) {
      if (s.visible[i] && s.selMask[i]) {
        stamp(i, r + 1, 255);
        drawnSelected++;
      }
    }
    this.drawnSelected = drawnSelected;
    ctx.putImageData(img, 0, 0);
    ctx.save();
    ctx.scale(dpr, dpr);
    const fg = s.fg || "#444";
    ctx.strokeStyle = fg;
    ctx.fillStyle = fg;
    ctx.globalAlpha = 0.7;
    ctx.lineWidth = 1;
    const x0 = MARGIN.left, y1 = H - MARGIN.bottom;
    ctx.beginPath();
    ctx.moveTo(x0, MARGIN.top);
    ctx.lineTo(x0, y1);
    ctx.lineTo(W - MARGIN.right, y1);
    ctx.stroke();
    ctx.font = "10px sans-serif";
    ctx.textAlign = "right";
    ctx.fillText("1", x0 - 3, MARGIN.top + 8);
    ctx.fillText("0", x0 - 3, y1);
    ctx.save();
    ctx.translate(10, (MARGIN.top + y1) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText("confidence", 0, 0);
    ctx.restore();
    ctx.textAlign = "left";
    ctx.fillText("0", x0, y1 + 11);
    ctx.textAlign = "right";
    ctx.fillText(layout.x1.toFixed(2), W - MARGIN.right, y1 + 11);
    ctx.textAlign = "center";
    ctx.fillText("variability", (x0 + W - MARGIN.right) / 2, y1 + 22);
    if (this.poly && this.poly.length >= 4) {
      ctx.globalAlpha = 1;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(this.poly[0], this.poly[1]);
      for (let k = 2; k < this.poly.length; k += 2) ctx.lineTo(this.poly[k], this.poly[k + 1]);
      ctx.closePath();
      ctx.stroke();
    }
    ctx.restore();
  }
}
