/**
 * Training dynamics in the page: the per-sample statistics Python computes
 * (vis.dynamics(): AUM, cartography, forgetting events, flips), colouring
 * points by one of them on viridis (perceptually uniform, readable with
 * colour-vision deficiencies and in greyscale), a colour bar, and a range
 * filter. Pure functions, tested in node (js/test/dynamics.test.js).
 *
 * Wire format (PROTOCOL.md, trait `dynamics`): float32, column after column,
 * (K, n) for the K names in meta.dynamics.columns; NaN where a statistic has
 * no value (first_learned of a never-learned sample).
 */
import { pack } from "./colors.js";
import { h, setChildren } from "./dom.js";

// matplotlib's viridis, 256 entries (bokeh.palettes.Viridis256), as hex.
const VIRIDIS_HEX =
  "44015444025544035745055845065A45085B46095C460B5E460C5F460E61470F6247116347126547146647156747166947186A48196B481A6C481C6E481D6F481E70482071482172482273482374472575472676472777472878472A79472B7A472C7B462D7C462F7C46307D46317E45327F45347F453580453681443781443982433A83433B83433C84423D84423E854240854141864142864043874044873F45873F47883E48883E49893D4A893D4B893D4C893C4D8A3C4E8A3B508A3B518A3A528B3A538B39548B39558B38568B38578C37588C37598C365A8C365B8C355C8C355D8C345E8D345F8D33608D33618D32628D32638D31648D31658D31668D30678D30688D2F698D2F6A8D2E6B8E2E6C8E2E6D8E2D6E8E2D6F8E2C708E2C718E2C728E2B738E2B748E2A758E2A768E2A778E29788E29798E287A8E287A8E287B8E277C8E277D8E277E8E267F8E26808E26818E25828E25838D24848D24858D24868D23878D23888D23898D22898D228A8D228B8D218C8D218D8C218E8C208F8C20908C20918C1F928C1F938B1F948B1F958B1F968B1E978A1E988A1E998A1E998A1E9A891E9B891E9C891E9D881E9E881E9F881EA0871FA1871FA2861FA38620A48520A58521A68521A78422A78423A88323A98224AA8225AB8126AC8127AD8028AE7F29AF7F2AB07E2BB17D2CB17D2EB27C2FB37B30B47A32B57A33B67935B77836B87738B97639B9763BBA753DBB743EBC7340BD7242BE7144BE7045BF6F47C06E49C16D4BC26C4DC26B4FC36951C46853C56755C66657C66559C7645BC8625EC96160C96062CA5F64CB5D67CC5C69CC5B6BCD596DCE5870CE5672CF5574D05477D05279D1517CD24F7ED24E81D34C83D34B86D44988D5478BD5468DD64490D64392D74195D73F97D83E9AD83C9DD93A9FD938A2DA37A5DA35A7DB33AADB32ADDC30AFDC2EB2DD2CB5DD2BB7DD29BADE27BDDE26BFDF24C2DF22C5DF21C7E01FCAE01ECDE01DCFE11CD2E11BD4E11AD7E219DAE218DCE218DFE318E1E318E4E318E7E419E9E419ECE41AEEE51BF1E51CF3E51EF6E61FF8E621FAE622FDE724";

export const VIRIDIS = (() => {
  const out = new Uint8Array(256 * 3);
  for (let i = 0; i < 256 * 3; i++) out[i] = parseInt(VIRIDIS_HEX.slice(2 * i, 2 * i + 2), 16);
  return out;
})();

/** The statistics' names (dvi_widget/analysis/dynamics.py DYNAMICS_COLUMNS; tests/test_dynamics.py checks they match). */
export const DYNAMICS_COLUMNS = ["aum", "confidence", "variability", "correctness", "forgetting_events", "first_learned", "never_learned", "flips"];

/** Colour of a statistic with no value (NaN): neutral grey, outside viridis. */
export const MISSING_RGB = [158, 158, 158];

/** A colouring mode names a statistic when it is one of the dynamics columns. */
export function isStat(mode, dyn) {
  return !!(dyn && dyn.values && Object.prototype.hasOwnProperty.call(dyn.values, mode));
}

/**
 * Decode the dynamics buffer. bytes: Uint8Array (or DataView) of K * n float32;
 * info: meta.dynamics ({columns, descriptions, aum_from, epochs}). Returns
 * {columns, info, values: {name: Float32Array(n)}, ranges: {name: [min, max]}}
 * or null when the run sent none.
 */
export function decodeDynamics(bytes, info, n) {
  if (!info || !info.columns || !info.columns.length || !bytes || !bytes.byteLength) return null;
  const K = info.columns.length;
  if (bytes.byteLength !== K * n * 4) {
    throw new Error(`dynamics: expected ${K} x ${n} float32 values (${K * n * 4} bytes), got ${bytes.byteLength} bytes`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const all = new Float32Array(copy.buffer);
  const values = {}, ranges = {};
  info.columns.forEach((name, k) => {
    values[name] = all.subarray(k * n, (k + 1) * n);
    ranges[name] = finiteRange(values[name]);
  });
  return { columns: info.columns.slice(), info, values, ranges };
}

/** [min, max] of the finite values ([0, 1] when there are none; equal ends widened). */
export function finiteRange(values) {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

/** [r, g, b] of value v on viridis over [lo, hi] (clamped); NaN -> MISSING_RGB. */
export function viridis(v, lo, hi) {
  if (!Number.isFinite(v)) return MISSING_RGB;
  const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0.5;
  const k = Math.round(t * 255) * 3;
  return [VIRIDIS[k], VIRIDIS[k + 1], VIRIDIS[k + 2]];
}

/** Per-point colour words (colors.js pack) of a statistic on viridis over [lo, hi]. */
export function statColors(values, lo, hi, out = null) {
  const n = values.length;
  const words = out && out.length === n ? out : new Uint32Array(n);
  const table = new Uint32Array(256);
  for (let k = 0; k < 256; k++) table[k] = pack(VIRIDIS[3 * k], VIRIDIS[3 * k + 1], VIRIDIS[3 * k + 2]);
  const missing = pack(...MISSING_RGB);
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) words[i] = missing;
    else words[i] = table[Math.round(Math.min(1, Math.max(0, (v - lo) / span)) * 255)];
  }
  return words;
}

/**
 * The range filter: clear mask[i] for points whose statistic lies outside
 * [filter.min, filter.max] (NaN counts as outside). filter: {column, min, max}
 * or null / {} (no filter). Returns the mask.
 */
export function applyRangeFilter(mask, dyn, filter) {
  if (!filter || !filter.column || !dyn || !dyn.values[filter.column]) return mask;
  const v = dyn.values[filter.column];
  const lo = filter.min == null ? -Infinity : filter.min, hi = filter.max == null ? Infinity : filter.max;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] && !(v[i] >= lo && v[i] <= hi)) mask[i] = 0;
  }
  return mask;
}

/** A key that changes when the colouring or the filter that dynamics decide changes. */
export function dynamicsKey(dyn, colorBy, filter) {
  if (!dyn) return "";
  const f = filter && filter.column ? `${filter.column}:${filter.min}:${filter.max}` : "";
  return `${isStat(colorBy, dyn) ? colorBy : ""}|${f}`;
}

function fmtStat(v) {
  if (!Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  return a !== 0 && (a < 0.01 || a >= 1000) ? v.toExponential(2) : String(+v.toFixed(a < 1 ? 3 : 2));
}

const STEPS = 200;

/**
 * The colour bar of the statistic coloured now, with its meaning and a range
 * filter (two sliders: keep points with min <= value <= max). Rebuilt when the
 * colouring changes; the sliders call onFilter({column, min, max}) or
 * onFilter(null) when both are at the ends. Returns {setFilter(filter)}, which
 * moves the sliders to a filter set elsewhere (Python) without rebuilding them
 * (a rebuilt slider would lose the keyboard focus mid-adjustment).
 */
export function renderColorBar(el, { dyn, colorBy, filter }, onFilter) {
  if (!isStat(colorBy, dyn)) {
    el.hidden = true;
    setChildren(el);
    return { setFilter() {} };
  }
  el.hidden = false;
  const [lo, hi] = dyn.ranges[colorBy];
  const desc = (dyn.info.descriptions || {})[colorBy] || "";
  const bar = h("canvas", { class: "dvi-colorbar-ramp", width: "256", height: "1", "aria-hidden": "true" });
  const ctx = bar.getContext && bar.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(256, 1);
    for (let k = 0; k < 256; k++) {
      img.data.set([VIRIDIS[3 * k], VIRIDIS[3 * k + 1], VIRIDIS[3 * k + 2], 255], 4 * k);
    }
    ctx.putImageData(img, 0, 0);
  }
  const toStep = (v) => Math.round(((v - lo) / (hi - lo)) * STEPS);
  const fromStep = (s) => lo + ((hi - lo) * s) / STEPS;
  const minIn = h("input", { type: "range", min: "0", max: String(STEPS), step: "1", class: "dvi-range-min",
    "aria-label": `minimum ${colorBy}`, value: "0" });
  const maxIn = h("input", { type: "range", min: "0", max: String(STEPS), step: "1", class: "dvi-range-max",
    "aria-label": `maximum ${colorBy}`, value: String(STEPS) });
  const shown = h("span", { class: "dvi-range-text" });
  const label = () => {
    const a = +minIn.value, b = +maxIn.value;
    shown.textContent = a === 0 && b === STEPS ? "showing all" : `showing ${fmtStat(fromStep(a))} … ${fmtStat(fromStep(b))}`;
  };
  const changed = (which) => {
    let a = +minIn.value, b = +maxIn.value;
    if (a > b) {
      if (which === "min") maxIn.value = String((b = a));
      else minIn.value = String((a = b));
    }
    label();
    onFilter(a === 0 && b === STEPS ? null : { column: colorBy, min: a === 0 ? null : fromStep(a), max: b === STEPS ? null : fromStep(b) });
  };
  minIn.addEventListener("input", () => label());
  maxIn.addEventListener("input", () => label());
  minIn.addEventListener("change", () => changed("min"));
  maxIn.addEventListener("change", () => changed("max"));
  const setFilter = (f) => {
    const cur = f && f.column === colorBy ? f : null;
    const a = String(cur && cur.min != null ? Math.max(0, Math.min(STEPS, toStep(cur.min))) : 0);
    const b = String(cur && cur.max != null ? Math.max(0, Math.min(STEPS, toStep(cur.max))) : STEPS);
    if (minIn.value !== a) minIn.value = a;
    if (maxIn.value !== b) maxIn.value = b;
    label();
  };
  setFilter(filter);
  const epochs = dyn.info.epochs || [];
  const over = epochs.length ? `over epochs ${epochs[0]}–${epochs[epochs.length - 1]} (${epochs.length})` : "";
  const aum = colorBy === "aum" && dyn.info.aum_from ? ` · margin from ${dyn.info.aum_from}` : "";
  setChildren(
    el,
    h("div", { class: "dvi-colorbar-title", title: desc }, h("b", { text: colorBy }), ` ${over}${aum}`),
    bar,
    h("div", { class: "dvi-colorbar-ticks" }, h("span", { text: fmtStat(lo) }), h("span", { text: fmtStat((lo + hi) / 2) }), h("span", { text: fmtStat(hi) })),
    h("div", { class: "dvi-colorbar-desc", text: desc }),
    h("div", { class: "dvi-range" }, minIn, maxIn, shown),
  );
  return { setFilter };
}
