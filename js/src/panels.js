/**
 * Side panels: legend (class names, colours, counts; click filters a class),
 * faithfulness figures for the current epoch, hover tooltip, and the
 * inspector (larger image and the sample's history over epochs).
 * Data text goes in through textContent only (see dom.js).
 */
import { h, setChildren, fmt, hex } from "./dom.js";
import { sampleHistory } from "./filters.js";
import { CORRECT_RGB, WRONG_RGB } from "./colors.js";

/** Faithfulness figures shown, in order: [metric key, label, explanation]. */
export const METRICS = [
  ["nn_rate@15", "nn_rate@15", "share of each point's 15 nearest neighbours (high-D) kept on the map"],
  ["boundary_nn_rate@15", "boundary nn_rate@15", "the same, neighbours among the boundary samples"],
  ["ppr", "ppr", "share of samples whose predicted class survives the inverse projection"],
  ["map_consistency", "map consistency", "share of samples whose background colour shows their predicted class"],
  ["accuracy/train", "train accuracy", "the classifier's accuracy on the recorded training samples"],
  ["accuracy/test", "test accuracy", "the classifier's accuracy on the recorded test samples"],
];

export function renderLegend(el, { classes, classRGB, counts, hidden, onToggle, colorBy = "label" }) {
  const rows = classes.map((name, c) =>
    h(
      "button",
      {
        class: "dvi-legend-item" + (hidden.has(c) ? " dvi-off" : ""),
        type: "button",
        title: hidden.has(c) ? "show this class" : "hide this class",
        "data-class": c,
        onclick: () => onToggle(c),
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
          "misclassified",
        )
      : colorBy === "prediction"
        ? h("div", { class: "dvi-legend-key", text: "points: predicted class; counts: labels" })
        : null;
  setChildren(el, h("div", { class: "dvi-panel-title", text: "Classes" }), key, h("div", { class: "dvi-legend-list" }, rows));
}

export function renderMetrics(el, epoch, metrics) {
  const rows = METRICS.map(([key, label, why]) =>
    h(
      "tr",
      { title: why, "data-metric": key },
      h("td", { text: label }),
      h("td", { class: "dvi-num", text: fmt(metrics ? metrics[key] : undefined) }),
    ),
  );
  setChildren(
    el,
    h("div", { class: "dvi-panel-title", text: epoch == null ? "Faithfulness" : `Faithfulness, epoch ${epoch}` }),
    h("table", { class: "dvi-metrics" }, h("tbody", {}, rows)),
  );
}

/** Tooltip content for display position i. */
export function renderTooltip(el, app, i) {
  const e = app.currentEpoch();
  const label = app.labels[i];
  const pred = e ? e.predictions[i] : null;
  setChildren(
    el,
    app.thumbs.canvas(i, "dvi-thumb"),
    h(
      "div",
      { class: "dvi-tip-text" },
      h("div", { class: "dvi-tip-index", text: `#${app.globalIndex(i)}${app.isTest[i] ? " (test)" : ""}` }),
      h("div", { text: `label: ${app.classes[label]}` }),
      h("div", { text: pred == null ? "prediction: —" : `prediction: ${app.classes[pred]}` + (pred !== label ? " ✗" : "") }),
      h("div", { text: `confidence: ${e ? fmt(e.confidence[i], 2) : "—"}` }),
    ),
  );
}

/** Inspector for display position i over all loaded epochs. */
export function renderInspector(el, app, i, onClose) {
  if (i == null) {
    setChildren(el);
    el.hidden = true;
    return;
  }
  el.hidden = false;
  const epochs = app.store.epochs;
  const hist = sampleHistory(epochs, i);
  const label = app.labels[i];
  const cur = app.currentEpoch();
  const flips = hist.filter((r) => r.flipped);
  const gi = app.globalIndex(i);
  el.dataset.index = String(gi);
  const img = app.thumbs.canvas(i, "dvi-thumb-large");
  const strip = h(
    "div",
    { class: "dvi-pred-strip" },
    hist.map((r) =>
      h("span", {
        class: "dvi-pred-cell" + (r.flipped ? " dvi-flip" : "") + (cur && r.epoch === cur.epoch ? " dvi-current" : ""),
        style: { background: hex(app.classRGB[r.prediction]) },
        title: `epoch ${r.epoch}: ${app.classes[r.prediction]}, p(label) ${fmt(r.labelProb, 2)}`,
      }),
    ),
  );
  setChildren(
    el,
    h(
      "div",
      { class: "dvi-panel-title" },
      h("span", { text: `Sample #${gi}` }),
      h("button", { class: "dvi-close", type: "button", title: "close", onclick: onClose, text: "×" }),
    ),
    h(
      "div",
      { class: "dvi-inspect-head" },
      img,
      h(
        "div",
        {},
        h("div", { text: `label: ${app.classes[label]}` }),
        h("div", { text: `split: ${app.isTest[i] ? "test" : "train"}` }),
        cur ? h("div", { text: `prediction: ${app.classes[cur.predictions[i]]}` }) : null,
        cur ? h("div", { text: `confidence: ${fmt(cur.confidence[i], 2)}` }) : null,
      ),
    ),
    h("div", { class: "dvi-subtitle", text: "p(label) over epochs" }),
    historyChart(hist, cur ? cur.epoch : null),
    h("div", { class: "dvi-subtitle", text: "prediction per epoch" }),
    strip,
    h(
      "div",
      { class: "dvi-flips" },
      flips.length === 0
        ? "no flips: the prediction never changed"
        : `flipped at epoch ${flips.map((r) => `${r.epoch} (${app.classes[r.from]} → ${app.classes[r.prediction]})`).join(", ")}`,
    ),
  );
}

function historyChart(hist, current) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 100, H = 40, pad = 3;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "dvi-history");
  svg.setAttribute("preserveAspectRatio", "none");
  const n = hist.length;
  const x = (k) => (n <= 1 ? W / 2 : pad + ((W - 2 * pad) * k) / (n - 1));
  const y = (p) => H - pad - (H - 2 * pad) * p;
  const el = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    svg.append(e);
    return e;
  };
  el("line", { x1: 0, x2: W, y1: y(0.5), y2: y(0.5), class: "dvi-history-mid" });
  const k = hist.findIndex((r) => r.epoch === current);
  if (k >= 0) el("line", { x1: x(k), x2: x(k), y1: 0, y2: H, class: "dvi-history-now" });
  el("polyline", { points: hist.map((r, j) => `${x(j)},${y(r.labelProb)}`).join(" "), class: "dvi-history-line" });
  hist.forEach((r, j) => {
    if (r.flipped) el("circle", { cx: x(j), cy: y(r.labelProb), r: 1.6, class: "dvi-history-flip" });
  });
  return svg;
}
