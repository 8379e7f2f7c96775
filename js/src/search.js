/**
 * Search and jump: a sample index ("#123", or "123" when no class is named
 * "123") selects that sample,
 * centres the map on it and opens it in the inspector; a class name (exact,
 * any case, or an unambiguous prefix) selects that class. And the selection's
 * breakdown by class and by correct / misclassified at the epoch shown.
 * `parseQuery` and `selectionBreakdown` are pure (tested in node).
 */
import { h, setChildren, hex } from "./dom.js";

/**
 * What a search string asks for: {kind: "index", index} | {kind: "class", cls}
 * | {kind: "error", message} | null (empty). n: the run's sample count.
 */
export function parseQuery(text, classes, n) {
  const q = String(text == null ? "" : text).trim();
  if (!q) return null;
  const num = /^(#?)(\d+)$/.exec(q);
  const lower = q.toLowerCase();
  const exact = classes.findIndex((c) => String(c).toLowerCase() === lower);
  // a class literally named "3" wins over sample 3; "#3" is always sample 3
  if (exact >= 0 && !(num && num[1])) return { kind: "class", cls: exact };
  if (num) {
    const index = Number(num[2]);
    if (index >= n) return { kind: "error", message: `no sample ${index}: this run has ${n} samples (0–${n - 1})` };
    return { kind: "index", index };
  }
  const starts = classes.map((c, k) => [String(c).toLowerCase(), k]).filter(([c]) => c.startsWith(lower));
  if (starts.length === 1) return { kind: "class", cls: starts[0][1] };
  if (starts.length > 1) {
    return { kind: "error", message: `“${q}” matches ${starts.length} classes: ${starts.slice(0, 5).map(([, k]) => classes[k]).join(", ")}${starts.length > 5 ? ", …" : ""}` };
  }
  return { kind: "error", message: `no sample index or class matches “${q}”` };
}

/**
 * The selection (display positions with selMask[i] = 1) by class and by
 * correct / misclassified under `predictions` (null: no epoch yet).
 * Returns {total, correct, wrong, rows: [{cls, count, correct, wrong}]}, rows
 * by count, largest first.
 */
export function selectionBreakdown(selMask, labels, predictions, nClasses) {
  const count = new Array(nClasses).fill(0), right = new Array(nClasses).fill(0);
  let total = 0, correct = 0;
  for (let i = 0; i < selMask.length; i++) {
    if (!selMask[i]) continue;
    total++;
    count[labels[i]]++;
    if (predictions && predictions[i] === labels[i]) {
      correct++;
      right[labels[i]]++;
    }
  }
  const rows = [];
  for (let c = 0; c < nClasses; c++) if (count[c]) rows.push({ cls: c, count: count[c], correct: right[c], wrong: count[c] - right[c] });
  rows.sort((a, b) => b.count - a.count || a.cls - b.cls);
  return { total, correct: predictions ? correct : null, wrong: predictions ? total - correct : null, rows };
}

/** The search box. onQuery(text) returns a message to show (or "" on success). */
export function buildSearch(el, onQuery) {
  const input = h("input", { type: "search", class: "dvi-search-input", placeholder: "#index or class", "aria-label": "search a sample index or a class name" });
  const msg = h("span", { class: "dvi-search-msg", role: "status" });
  // a form: Enter submits it as the input's default action, which still happens although the
  // widget stops key events from reaching the notebook (input.js)
  const button = h("button", { type: "submit", class: "dvi-search-go", text: "go" });
  const form = h("form", { class: "dvi-search-form" }, input, button);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    msg.textContent = onQuery(input.value) || "";
  });
  setChildren(el, form, msg);
  return { input, msg };
}

/** The breakdown table of the selection. */
export function renderBreakdown(el, b, { classes, classRGB, hiddenCount = 0 }) {
  if (!b || b.total === 0) {
    el.hidden = true;
    setChildren(el);
    return;
  }
  el.hidden = false;
  const pct = (a) => `${Math.round((100 * a) / b.total)}%`;
  const head = b.correct == null
    ? `${b.total} selected`
    : `${b.total} selected: ${b.correct} correct (${pct(b.correct)}), ${b.wrong} misclassified (${pct(b.wrong)})`;
  const rows = b.rows.slice(0, 12).map((r) => h("tr", {},
    h("td", {}, h("span", { class: "dvi-swatch", style: { background: hex(classRGB[r.cls]) } }), classes[r.cls]),
    h("td", { class: "dvi-num", text: String(r.count) }),
    h("td", { class: "dvi-num", text: b.correct == null ? "—" : String(r.correct) }),
    h("td", { class: "dvi-num", text: b.correct == null ? "—" : String(r.wrong) })));
  setChildren(el,
    h("div", { class: "dvi-breakdown-head", text: head }),
    h("table", { class: "dvi-breakdown-table" },
      h("thead", {}, h("tr", {}, h("th", { text: "label" }), h("th", { text: "n" }), h("th", { text: "correct" }), h("th", { text: "wrong" }))),
      h("tbody", {}, rows)),
    b.rows.length > 12 ? h("div", { class: "dvi-muted", text: `… and ${b.rows.length - 12} more classes` }) : null,
    hiddenCount ? h("div", { class: "dvi-muted", text: `${hiddenCount} selected samples are not among the displayed points` }) : null);
}
