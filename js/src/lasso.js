/**
 * Lasso hit-testing: which points lie inside a freehand polygon.
 *
 * Even-odd (crossing number) rule. Edges are bucketed by y into horizontal
 * bands, so each point only tests the few edges that span its band: the cost
 * is about O(points + edges) rather than O(points x edges), which keeps a
 * 300-vertex lasso over 50,000 points well under a frame.
 */

/** Bounding box of a flat polygon [x0, y0, x1, y1, ...]. */
export function polygonBounds(poly) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < poly.length; i += 2) {
    const x = poly[i], y = poly[i + 1];
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return { x0, y0, x1, y1 };
}

/** True when (x, y) is inside the flat polygon (even-odd rule). */
export function pointInPolygon(x, y, poly) {
  let inside = false;
  const m = poly.length / 2;
  for (let i = 0, j = m - 1; i < m; j = i++) {
    const xi = poly[2 * i], yi = poly[2 * i + 1];
    const xj = poly[2 * j], yj = poly[2 * j + 1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * Indices i (into xs/ys) inside the polygon, for which `visible(i)` holds when given.
 * xs, ys: screen coordinates (typed arrays); poly: flat [x0, y0, ...] (closed implicitly).
 * Returns a Uint32Array of positions into xs, ascending.
 */
export function pointsInPolygon(xs, ys, poly, visible = null) {
  const m = poly.length / 2;
  if (m < 3) return new Uint32Array(0);
  const { x0, y0, x1, y1 } = polygonBounds(poly);
  const bands = Math.max(1, Math.min(256, m));
  const h = (y1 - y0) / bands || 1;
  // edge lists per band: edges whose y-span touches the band
  const buckets = Array.from({ length: bands }, () => []);
  for (let i = 0, j = m - 1; i < m; j = i++) {
    const ya = poly[2 * i + 1], yb = poly[2 * j + 1];
    if (ya === yb) continue; // horizontal edges never cross a ray
    const lo = Math.max(0, Math.floor((Math.min(ya, yb) - y0) / h));
    const hi = Math.min(bands - 1, Math.floor((Math.max(ya, yb) - y0) / h));
    for (let b = lo; b <= hi; b++) buckets[b].push(i, j);
  }
  const flat = buckets.map((edges) => Int32Array.from(edges));
  const hits = [];
  const n = xs.length;
  for (let p = 0; p < n; p++) {
    const x = xs[p], y = ys[p];
    if (x < x0 || x > x1 || y < y0 || y > y1) continue;
    if (visible && !visible(p)) continue;
    const edges = flat[Math.min(bands - 1, Math.floor((y - y0) / h))];
    let inside = false;
    for (let e = 0; e < edges.length; e += 2) {
      const i = edges[e], j = edges[e + 1];
      const xi = poly[2 * i], yi = poly[2 * i + 1];
      const xj = poly[2 * j], yj = poly[2 * j + 1];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    if (inside) hits.push(p);
  }
  return Uint32Array.from(hits);
}

/**
 * Combine a lasso's hits with the current selection.
 * mode: "replace" (plain drag), "add" (shift), "subtract" (alt). Sets of global indices.
 */
export function combineSelection(current, hits, mode) {
  if (mode === "add") {
    const out = new Set(current);
    for (const h of hits) out.add(h);
    return out;
  }
  if (mode === "subtract") {
    const out = new Set(current);
    for (const h of hits) out.delete(h);
    return out;
  }
  return new Set(hits);
}
