/**
 * Side panels, drawn from plain data (no app object): the legend (class
 * names, colours, counts; click hides or shows a class, alt-click or
 * double-click shows only that class), the faithfulness figures with their
 * meaning, scale and the run's range, the hover tooltip, and the inspector
 * (larger image and the sample's history with a p(label) chart on an axis).
 * Data text goes in through textContent only (see dom.js).
 */
import { h, setChildren, fmt, hex } from "./dom.js";
import { CORRECT_RGB, WRONG_RGB } from "./colors.js";
import { METRICS, assess, runRange, warnings } from "./faith.js";

export { METRICS };

/**
 * Legend. data: {classes, classRGB, counts, hidden (Set), colorBy};
 * onToggle(c): hide/show class c; onIsolate(c): show only c (again: show all).
 */
export function renderLegend(el, { classes, classRGB, counts, hidden, colorBy = "label" }, { onToggle, onIsolate }) {
  const rows = classes.map((name, c) =>
    h(
      "button",
      {
        class: "dvi-legend-item" + (hidden.has(c) ? " dvi-off" : ""),
        type: "button",
        title: (hidden.has(c) ? "click: show this class" : "click: hide this class") + "; alt-click or double-click: only this class",
        "data-class": c,
        onclick: (ev) => (ev.altKey ? onIsolate(c) : onToggle(c)),
        ondblclick: () => onIsolate(c),
      },
      h("span", { class: "dvi-swatch", style: { background: hex(classRGB[c]) } }),
      h("span", { class: "dvi-legend-name", text: name }),
      h("span", { class: "dvi-legend-count", text: String(counts[c]) }),
    ),
  );
  const key =
    colorBy === "correct"
      ? h(
          "div",
          { class: "dvi-legend-key" },
          h("span", { class: "dvi-swatch", style: { background: hex(CORRECT_RGB) } }),
          "correct ",
          h("span", { class: "dvi-swatch", style: { background: hex(WRONG_RGB) } }),
          "misclassified (×)",
        )
      : colorBy === "prediction"
        ? h("div", { class: "dvi-legend-key", text: "points: predicted class; counts: labels" })
        : null;
  const hint = h("div", { class: "dvi-legend-hint", text: "click hides a class; alt-click or double-click shows only it" });
  setChildren(el, h("div", { class: "dvi-panel-title", text: "Classes" }), key, h("div", { class: "dvi-legend-list" }, rows), hint);
}

/**
 * Faithfulness panel. data: {epoch, metrics (this epoch's), allMetrics (every
 * loaded epoch's, for the run's range), summary (run-level figures)}.
 */
export function renderMetrics(el, { epoch, metrics, allMetrics = [], summary = {} }) {
  const rows = [];
  for (const m of METRICS) {
    const v = metrics ? metrics[m.key] : undefined;
    const range = runRange(allMetrics, m.key);
    if (v === undefined && !range) continue; // a figure this run does not have
    const verdict = assess(m, v);
    const why = m.meaning + (m.reference ? `. ${m.reference}` : "");
    const scaleText = m.scale
      ? m.lowerIsBetter
        ? `good ≤ ${m.scale[0]}, poor > ${m.scale[1]}`
        : `good ≥ ${m.scale[1]}, poor < ${m.scale[0]}`
      : "";
    rows.push(
      h(
        "div",
        { class: "dvi-faith-row", title: why + (scaleText ? ` (${scaleText})` : ""), "data-metric": m.key },
        h(
          "div",
          { class: "dvi-faith-head" },
          h("span", { class: "dvi-faith-name", text: m.label }),
          h("span", { class: "dvi-num", text: fmt(v) }),
          verdict ? h("span", { class: `dvi-verdict dvi-${verdict}`, text: verdict }) : h("span", { class: "dvi-verdict" }),
        ),
        h("div", { class: "dvi-faith-why", text: m.meaning }),
        m.scale ? scaleBar(m, v, range) : null,
        h(
          "div",
          { class: "dvi-faith-range" },
          (scaleText ? scaleText + "; " : "") +
            (range && range.count > 1 ? `run: ${fmt(range.min)}–${fmt(range.max)} over ${range.count} epochs` : "one epoch so far"),
        ),
      ),
    );
  }
  const warn = warnings(metrics);
  const stab = summary && typeof summary.stab_spearman === "number" ? summary.stab_spearman : null;
  setChildren(
    el,
    h("div", { class: "dvi-panel-title", text: epoch == null ? "Faithfulness" : `Faithfulness, epoch ${epoch}` }),
    h("div", { class: "dvi-faith-intro", text: "How far to trust the map (hover a figure for details)." }),
    warn.map((w) => h("div", { class: "dvi-faith-warn", role: "note", text: "⚠ " + w })),
    rows.length ? rows : h("div", { class: "dvi-faith-why", text: "no figures for this epoch" }),
    stab == null
      ? null
      : h("div", { class: "dvi-faith-row", "data-metric": "stab_spearman", title: "Spearman correlation between how far samples move in the model and on the map, over all epochs (1 = movement on the map is faithful)" },
          h("div", { class: "dvi-faith-head" }, h("span", { class: "dvi-faith-name", text: "movement kept (run)" }), h("span", { class: "dvi-num", text: fmt(stab) })),
          h("div", { class: "dvi-faith-why", text: "whether samples that move more in the model also move more on the map, over the run" })),
  );
}

/** A 0..1 bar: poor / fair / good zones, the run's range as a band, this epoch as a tick. */
function scaleBar(m, v, range) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 100 8");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "dvi-scale");
  const add = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, String(val));
    svg.append(e);
    return e;
  };
  const [a, b] = m.scale;
  const x = (p) => Math.max(0, Math.min(100, p * 100));
  const zones = m.lowerIsBetter ? [["good", 0, a], ["fair", a, b], ["poor", b, 1]] : [["poor", 0, a], ["fair", a, b], ["good", b, 1]];
  for (const [cls, lo, hi] of zones) add("rect", { x: x(lo), y: 2, width: x(hi) - x(lo), height: 4, class: `dvi-zone-${cls}` });
  if (range) add("rect", { x: x(range.min), y: 1, width: Math.max(0.8, x(range.max) - x(range.min)), height: 6, class: "dvi-scale-range" });
  if (typeof v === "number" && Number.isFinite(v)) add("rect", { x: x(v) - 0.8, y: 0, width: 1.6, height: 8, class: "dvi-scale-now" });
  return svg;
}

/** Tooltip. data: {index, isTest, label, prediction (name or null), wrong, confidence, thumb (canvas or null)}. */
export function renderTooltip(el, d) {
  setChildren(
    el,
    d.thumb,
    h(
      "div",
      { class: "dvi-tip-text" },
      h("div", { class: "dvi-tip-index", text: `#${d.index}${d.isTest ? " (test)" : ""}` }),
      h("div", { text: `label: ${d.label}` }),
      h("div", { text: d.prediction == null ? "prediction: —" : `prediction: ${d.prediction}` + (d.wrong ? " ✗" : "") }),
      h("div", { text: `confidence: ${fmt(d.confidence, 2)}` }),
    ),
  );
}

/**
 * Inspector. d: null (closed) or {index, isTest, label, classes, classRGB, history:
 * [{epoch, prediction, labelProb, flipped, from}], current (epoch or null),
 * prediction, confidence, thumb (canvas or null)}; onClose().
 */
export function renderInspector(el, d, onClose) {
  if (d == null) {
    setChildren(el);
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.dataset.index = String(d.index);
  const hist = d.history;
  const flips = hist.filter((r) => r.flipped);
  const strip = h(
    "div",
    { class: "dvi-pred-strip" },
    hist.map((r) =>
      h("span", {
        class: "dvi-pred-cell" + (r.flipped ? " dvi-flip" : "") + (r.epoch === d.current ? " dvi-current" : ""),
        style: { background: hex(d.classRGB[r.prediction]) },
        title: `epoch ${r.epoch}: ${d.classes[r.prediction]}, p(label) ${fmt(r.labelProb, 2)}`,
      }),
    ),
  );
  setChildren(
    el,
    h(
      "div",
      { class: "dvi-panel-title" },
      h("span", { text: `Sample #${d.index}` }),
      h("button", { class: "dvi-close", type: "button", title: "close", onclick: onClose, text: "×" }),
    ),
    h(
      "div",
      { class: "dvi-inspect-head" },
      d.thumb,
      h(
        "div",
        {},
        h("div", { text: `label: ${d.label}` }),
        h("div", { text: `split: ${d.isTest ? "test" : "train"}` }),
        d.prediction != null ? h("div", { text: `prediction: ${d.prediction}` }) : null,
        d.confidence != null ? h("div", { text: `confidence: ${fmt(d.confidence, 2)}` }) : null,
      ),
    ),
    h("div", { class: "dvi-subtitle", text: "p(label) over epochs" }),
    historyChart(hist, d.current),
    h("div", { class: "dvi-subtitle", text: "prediction per epoch" }),
    strip,
    h(
      "div",
      { class: "dvi-flips" },
      flips.length === 0
        ? "no flips: the prediction never changed"
        : `flipped at epoch ${flips.map((r) => `${r.epoch} (${d.classes[r.from]} → ${d.classes[r.prediction]})`).join(", ")}`,
    ),
  );
}

/** Ticks for an epoch axis: at most `max` epoch numbers, first and last included. */
export function epochTicks(epochs, max = 5) {
  const n = epochs.length;
  if (n <= max) return epochs.slice();
  const out = [];
  for (let j = 0; j < max; j++) out.push(epochs[Math.round((j * (n - 1)) / (max - 1))]);
  return [...new Set(out)];
}

/** p(label) over epochs, on axes: y 0 / 0.5 / 1 with labels, x epoch numbers. Fixed pixel viewBox (no stretching of text). */
function historyChart(hist, current) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 220, H = 84, left = 26, right = 6, top = 6, bottom = 18;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "dvi-history");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "probability of the label per epoch");
  const n = hist.length;
  const x = (k) => (n <= 1 ? (left + W - right) / 2 : left + ((W - left - right) * k) / (n - 1));
  const y = (p) => H - bottom - (H - top - bottom) * p;
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    svg.append(e);
    return e;
  };
  // y axis: ticks and labels at 0, 0.5, 1
  el("line", { x1: left, x2: left, y1: y(0), y2: y(1), class: "dvi-axis" });
  for (const p of [0, 0.5, 1]) {
    el("line", { x1: left - 3, x2: W - right, y1: y(p), y2: y(p), class: p === 0.5 ? "dvi-history-mid" : "dvi-grid" });
    el("text", { x: left - 5, y: y(p) + 3, class: "dvi-tick-label dvi-tick-y", "text-anchor": "end" }, p === 0.5 ? "0.5" : String(p));
  }
  // x axis: epoch ticks
  el("line", { x1: left, x2: W - right, y1: y(0), y2: y(0), class: "dvi-axis" });
  const epochs = hist.map((r) => r.epoch);
  for (const e of epochTicks(epochs)) {
    const k = epochs.indexOf(e);
    el("line", { x1: x(k), x2: x(k), y1: y(0), y2: y(0) + 3, class: "dvi-axis" });
    el("text", { x: x(k), y: H - 4, class: "dvi-tick-label dvi-tick-x", "text-anchor": "middle" }, String(e));
  }
  const k = hist.findIndex((r) => r.epoch === current);
  if (k >= 0) el("line", { x1: x(k), x2: x(k), y1: y(1), y2: y(0), class: "dvi-history-now" });
  el("polyline", { points: hist.map((r, j) => `${x(j)},${y(r.labelProb)}`).join(" "), class: "dvi-history-line" });
  hist.forEach((r, j) => {
    if (r.flipped) el("circle", { cx: x(j), cy: y(r.labelProb), r: 2.5, class: "dvi-history-flip" });
  });
  return svg;
}
