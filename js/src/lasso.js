/**
 * Lasso hit-testing: which points lie inside a freehand polygon.
 *
 * Even-odd (crossing number) rule. A grid of small cells over the polygon
 * says which cells lie wholly inside or outside; only points in cells an edge
 * passes through are tested exactly, against the few edges of their
 * horizontal band: about one lookup per point, whatever the lasso's length
 * (benchmarks/README.md, "Widget", times it at 1,000,000 points).
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
 * Indices i (into xs/ys) inside the polygon, for which `visible` holds when
 * given (a function of i, or a Uint8Array mask, 1 = visible).
 * xs, ys: screen coordinates (typed arrays); poly: flat [x0, y0, ...] (closed implicitly).
 * Returns a Uint32Array of positions into xs, ascending.
 *
 * The polygon's bounding box is cut into cells of `cell` px. Cells an edge
 * passes through are marked "edge"; every other cell lies wholly inside or
 * outside, as its centre does (one even-odd scan per row of cells). A point
 * in an inside cell is a hit, one in an outside cell is not, and only points
 * in edge cells get the exact even-odd test (against the edges of their band):
 * the same answer as testing every point, at about one lookup per point.
 * Cells of 1 px: edge cells then hold half the points they do at 2 px, and the
 * exact tests are what costs (node, 1,000,000 clustered points, the benchmark's
 * 200-vertex star on 898 x 898: 49 ms median against 76 ms at 2 px).
 */
export function pointsInPolygon(xs, ys, poly, visible = null, cell = 1) {
  const m = poly.length / 2;
  if (m < 3) return new Uint32Array(0);
  const { x0, y0, x1, y1 } = polygonBounds(poly);
  const gw = Math.max(1, Math.ceil((x1 - x0) / cell) + 1), gh = Math.max(1, Math.ceil((y1 - y0) / cell) + 1);
  const grid = cellGrid(poly, x0, y0, gw, gh, cell); // 0 outside, 1 inside, 2 edge
  const bandOf = edgeBands(poly, y0, y1);
  const mask = visible && typeof visible !== "function" ? visible : null;
  const fn = visible && typeof visible === "function" ? visible : null;
  const n = xs.length, inv = 1 / cell;
  const hits = new Uint32Array(n);
  let count = 0;
  for (let p = 0; p < n; p++) {
    const x = xs[p], y = ys[p];
    if (!(x >= x0 && x <= x1 && y >= y0 && y <= y1)) continue;
    if (mask ? mask[p] !== 1 : fn && !fn(p)) continue;
    const g = grid[((y - y0) * inv | 0) * gw + ((x - x0) * inv | 0)];
    if (g === 1 || (g === 2 && insideBand(x, y, poly, bandOf(y)))) hits[count++] = p;
  }
  return hits.slice(0, count);
}

/** Even-odd test of (x, y) against the edges [i, j, i, j, ...] of its band. */
function insideBand(x, y, poly, edges) {
  let inside = false;
  for (let e = 0; e < edges.length; e += 2) {
    const i = edges[e], j = edges[e + 1];
    const xi = poly[2 * i], yi = poly[2 * i + 1];
    const xj = poly[2 * j], yj = poly[2 * j + 1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * Edges bucketed by horizontal band (each point tests only the edges whose
 * y-span touches its band). Returns y -> Int32Array of edge end pairs.
 */
function edgeBands(poly, y0, y1) {
  const m = poly.length / 2;
  const bands = Math.max(1, Math.min(256, m));
  const h = (y1 - y0) / bands || 1;
  const buckets = Array.from({ length: bands }, () => []);
  for (let i = 0, j = m - 1; i < m; j = i++) {
    const ya = poly[2 * i + 1], yb = poly[2 * j + 1];
    if (ya === yb) continue; // horizontal edges never cross a ray
    const lo = Math.max(0, Math.floor((Math.min(ya, yb) - y0) / h));
    const hi = Math.min(bands - 1, Math.floor((Math.max(ya, yb) - y0) / h));
    for (let b = lo; b <= hi; b++) buckets[b].push(i, j);
  }
  const flat = buckets.map((edges) => Int32Array.from(edges));
  return (y) => flat[Math.max(0, Math.min(bands - 1, Math.floor((y - y0) / h)))];
}

/**
 * Uint8Array(gw * gh) over cells of `cell` px from (x0, y0): 2 where an edge
 * passes through the cell (or touches it: each edge marks every cell its
 * bounding box crosses within one cell of the segment), else 1 when the
 * cell's centre is inside the polygon (even-odd), else 0.
 */
function cellGrid(poly, x0, y0, gw, gh, cell) {
  const m = poly.length / 2;
  const grid = new Uint8Array(gw * gh);
  // inside/outside of each cell centre, row by row: the x where edges cross the row's centre line
  const xsCross = [];
  for (let r = 0; r < gh; r++) {
    const yc = y0 + (r + 0.5) * cell;
    xsCross.length = 0;
    for (let i = 0, j = m - 1; i < m; j = i++) {
      const xi = poly[2 * i], yi = poly[2 * i + 1], xj = poly[2 * j], yj = poly[2 * j + 1];
      if ((yi > yc) !== (yj > yc)) xsCross.push(((xj - xi) * (yc - yi)) / (yj - yi) + xi);
    }
    xsCross.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xsCross.length; k += 2) {
      // centres with xsCross[k] < xc < xsCross[k + 1] are inside (a point exactly on an edge: the exact test decides)
      const c0 = Math.max(0, Math.ceil((xsCross[k] - x0) / cell - 0.5));
      const c1 = Math.min(gw - 1, Math.floor((xsCross[k + 1] - x0) / cell - 0.5));
      for (let c = c0; c <= c1; c++) grid[r * gw + c] = 1;
    }
  }
  // edge cells: walk each edge in steps of at most half a cell, marking the 3 x 3 cells around each step
  for (let i = 0, j = m - 1; i < m; j = i++) {
    const xa = poly[2 * j], ya = poly[2 * j + 1], xb = poly[2 * i], yb = poly[2 * i + 1];
    const steps = Math.max(1, Math.ceil((Math.max(Math.abs(xb - xa), Math.abs(yb - ya)) / cell) * 2));
    for (let s = 0; s <= steps; s++) {
      const cx = ((xa + ((xb - xa) * s) / steps - x0) / cell) | 0, cy = ((ya + ((yb - ya) * s) / steps - y0) / cell) | 0;
      for (let dy = -1; dy <= 1; dy++) {
        const rr = cy + dy;
        if (rr < 0 || rr >= gh) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const cc = cx + dx;
          if (cc >= 0 && cc < gw) grid[rr * gw + cc] = 2;
        }
      }
    }
  }
  return grid;
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
