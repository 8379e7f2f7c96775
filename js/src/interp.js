/**
 * Interpolation between epochs: points glide from one epoch's layout to the
 * next during playback.
 */

/** Smooth ease-in-out on t in [0, 1] (cubic smoothstep). */
export function ease(t) {
  const c = Math.min(1, Math.max(0, t));
  return c * c * (3 - 2 * c);
}

/** out[k] = a[k] + (b[k] - a[k]) * t for flat Float32 arrays of equal length. */
export function lerpPositions(a, b, t, out = null) {
  const n = a.length;
  if (b.length !== n) throw new RangeError("positions of different lengths");
  const res = out && out.length === n ? out : new Float32Array(n);
  if (t <= 0) res.set(a);
  else if (t >= 1) res.set(b);
  else for (let k = 0; k < n; k++) res[k] = a[k] + (b[k] - a[k]) * t;
  return res;
}

/**
 * Where playback stands: given elapsed ms since a transition began and its
 * duration, the eased fraction and whether it is done.
 */
export function transitionProgress(elapsed, duration) {
  if (duration <= 0) return { t: 1, done: true };
  const raw = elapsed / duration;
  return { t: ease(raw), done: raw >= 1 };
}
