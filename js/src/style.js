/**
 * Drawing rules from dvi_widget/style.json (bundled at build time), and the
 * pure functions that apply them: point radius and opacity for a point count
 * and zoom, the map's aspect ratio, the trail sample. dvi_widget/outputs/pictures.py
 * reads the same file; PROTOCOL.md ("Drawing rules") states the formulas.
 */
import STYLE from "../../dvi_widget/style.json" with { type: "json" };

export { STYLE };

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/**
 * Point radius in CSS px: denser maps get smaller points, zooming in enlarges
 * them (less than the zoom itself), `size` is the user's multiplier.
 */
export function pointRadius(nVisible, width, height, zoom = 1, size = 1, style = STYLE) {
  const R = style.points.radius;
  const density = clamp(R.scale * Math.sqrt((width * height) / Math.max(nVisible, 1)), R.min, R.max);
  return Math.max(R.floor, Math.min(R.max, density * Math.pow(Math.max(zoom, 1e-6), R.zoom_exponent)) * size);
}

/**
 * Automatic point alpha (0..1): lower when points cover the map several times
 * over. `zoom` (relative to the fitted view) spreads the points: zoomed in,
 * fewer of them share the map's area.
 */
export function pointOpacity(nVisible, radius, width, height, zoom = 1, style = STYLE) {
  const O = style.points.opacity;
  if (O.opaque_above != null && nVisible > O.opaque_above) return 1;
  const z = Math.max(zoom, 1e-6);
  const overdraw = (nVisible * Math.PI * radius * radius) / Math.max(width * height * z * z, 1e-9);
  return clamp(O.coverage / Math.max(overdraw, 1e-9), O.min, O.max);
}

/** Whether points of radius r (CSS px) get an outline. */
export function hasOutline(radius, style = STYLE) {
  return radius >= style.points.outline.min_radius;
}

/** Width / height the map element takes for an extent [xmin, xmax, ymin, ymax]. */
export function mapAspect(extent, style = STYLE) {
  const V = style.view;
  if (!extent || extent.length !== 4) return 1.5;
  const w = extent[1] - extent[0], h = extent[3] - extent[2];
  if (!(w > 0 && h > 0) || !Number.isFinite(w / h)) return 1.5;
  return clamp(w / h, V.aspect_min, V.aspect_max);
}

/**
 * The samples whose trails are drawn: `positions` (ascending) thinned to at
 * most style.trails.max_samples, evenly spaced. Returns the same array when it fits.
 */
export function trailSample(positions, max = STYLE.trails.max_samples) {
  const m = positions.length;
  if (m <= max) return positions;
  const out = new positions.constructor(max);
  for (let j = 0; j < max; j++) out[j] = positions[Math.floor((j * m) / max)];
  return out;
}

/** Alpha of trail segment j (0 = oldest) of `segments`: old segments fade. */
export function trailAlpha(j, segments, style = STYLE) {
  const T = style.trails;
  if (segments <= 0) return T.alpha;
  return T.alpha * (T.fade_from + ((1 - T.fade_from) * (j + 1)) / segments);
}
