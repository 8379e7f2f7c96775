/**
 * The overlay canvas: trails of the selected samples, the hover and
 * inspector rings, the lasso being drawn. Functions of plain data and a 2-D
 * context in CSS px.
 */
import { shade } from "./colors.js";
import { toScreen } from "./view.js";
import { STYLE, trailSample, trailAlpha } from "./style.js";

/**
 * Which display positions get a trail: the selected visible points in
 * ascending global index, thinned to style.json trails.max_samples.
 * Returns {chosen: Uint32Array of display positions, total}.
 */
export function trailPoints(selectedGlobals, localOf, visible, max = STYLE.trails.max_samples) {
  const local = [];
  for (const g of selectedGlobals) {
    const i = g < localOf.length ? localOf[g] : -1;
    if (i >= 0 && visible[i]) local.push(i);
  }
  const sorted = Uint32Array.from(local);
  return { chosen: trailSample(sorted, max), total: sorted.length };
}

/**
 * Trails over all `epochs` (decoded, ascending) for display positions `chosen`:
 * old segments faint, an arrowhead at the last epoch's end. colorOf(i) -> [r, g, b].
 */
export function drawTrails(ctx, { epochs, chosen, view, width, height, colorOf }) {
  const E = epochs.length;
  if (E < 2) return;
  const T = STYLE.trails;
  ctx.lineWidth = T.line_width;
  ctx.lineCap = "round";
  const segs = E - 1;
  const pts = new Float32Array(2 * E);
  for (const i of chosen) {
    for (let k = 0; k < E; k++) {
      const [sx, sy] = toScreen(view, width, height, epochs[k].positions[2 * i], epochs[k].positions[2 * i + 1]);
      pts[2 * k] = sx;
      pts[2 * k + 1] = sy;
    }
    const [r, g, b] = shade(colorOf(i), T.shade);
    ctx.strokeStyle = ctx.fillStyle = `rgb(${r},${g},${b})`;
    for (let k = 0; k < segs; k++) {
      ctx.globalAlpha = trailAlpha(k, segs);
      ctx.beginPath();
      ctx.moveTo(pts[2 * k], pts[2 * k + 1]);
      ctx.lineTo(pts[2 * k + 2], pts[2 * k + 3]);
      ctx.stroke();
    }
    // arrowhead at the end, pointing along the last segment that moved
    let k = segs - 1;
    while (k > 0 && Math.hypot(pts[2 * k + 2] - pts[2 * k], pts[2 * k + 3] - pts[2 * k + 1]) < 0.5) k--;
    const x1 = pts[2 * segs], y1 = pts[2 * segs + 1];
    const dx = x1 - pts[2 * k], dy = y1 - pts[2 * k + 1];
    const len = Math.hypot(dx, dy);
    if (len >= 0.5) {
      const ux = dx / len, uy = dy / len, a = T.arrow_length;
      ctx.globalAlpha = T.alpha;
      ctx.beginPath();
      ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - a * ux + a * 0.5 * uy, y1 - a * uy - a * 0.5 * ux);
      ctx.lineTo(x1 - a * ux - a * 0.5 * uy, y1 - a * uy + a * 0.5 * ux);
      ctx.closePath();
      ctx.fill();
    }
  }
  ctx.globalAlpha = 1;
}

/** A ring of radius r around (x, y). */
export function ring(ctx, x, y, color, r) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.stroke();
}

/** The lasso polygon being drawn (flat [x0, y0, ...]). */
export function drawLasso(ctx, poly) {
  if (!poly || poly.length < 4) return;
  ctx.beginPath();
  ctx.moveTo(poly[0], poly[1]);
  for (let k = 2; k < poly.length; k += 2) ctx.lineTo(poly[k], poly[k + 1]);
  ctx.closePath();
  ctx.fillStyle = "rgba(25, 118, 210, 0.12)";
  ctx.fill();
  ctx.setLineDash([5, 4]);
  ctx.strokeStyle = "#1565c0";
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.setLineDash([]);
}
