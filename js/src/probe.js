/**
 * Questions only the kernel can answer (neighbours of a sample, what the map
 * decodes at an empty location), asked over the widget's custom messages.
 *
 * The browser never waits on the kernel: a request that gets no reply within
 * `timeoutMs` is reported as "the kernel is busy" (a training cell holds it;
 * the reply still lands when the kernel frees up), and a page with no kernel
 * (the offline export, meta.kernel === false) says so at once. Wire format:
 * PROTOCOL.md, "Requests".
 */
import { h, setChildren, fmt, hex } from "./dom.js";

export const DEFAULT_TIMEOUT_MS = 3000;

export class KernelChannel {
  /** model: the widget model (send / on / off); hasKernel: false in the offline page. */
  constructor(model, hasKernel, timeoutMs = DEFAULT_TIMEOUT_MS) {
    this.model = model;
    this.hasKernel = hasKernel && typeof model.send === "function";
    this.timeoutMs = timeoutMs;
    this.nextId = 1;
    this.pending = new Map();
    this._onMsg = (msg) => this._receive(msg);
    if (typeof model.on === "function") model.on("msg:custom", this._onMsg);
  }

  /**
   * Ask the kernel. onUpdate(state) is called with {status: "pending"}, then one
   * of {status: "ok", reply}, {status: "error", message}, {status: "busy"}
   * (no reply yet; a later reply still calls onUpdate with "ok") or
   * {status: "offline"}. Returns the request id.
   */
  request(type, payload, onUpdate) {
    if (!this.hasKernel) {
      onUpdate({ status: "offline" });
      return null;
    }
    const id = this.nextId++;
    const entry = { onUpdate, timer: null };
    entry.timer = setTimeout(() => {
      if (this.pending.has(id)) onUpdate({ status: "busy" });
    }, this.timeoutMs);
    this.pending.set(id, entry);
    onUpdate({ status: "pending" });
    this.model.send({ type: "dvi_request", request: type, id, ...payload });
    return id;
  }

  /** Forget a request (its panel was closed or replaced): a late reply is dropped. */
  cancel(id) {
    const e = this.pending.get(id);
    if (e) clearTimeout(e.timer);
    this.pending.delete(id);
  }

  _receive(msg) {
    if (!msg || msg.type !== "dvi_reply") return;
    const e = this.pending.get(msg.id);
    if (!e) return;
    clearTimeout(e.timer);
    this.pending.delete(msg.id);
    if (msg.error) e.onUpdate({ status: "error", message: String(msg.error) });
    else e.onUpdate({ status: "ok", reply: msg.reply });
  }

  dispose() {
    for (const e of this.pending.values()) clearTimeout(e.timer);
    this.pending.clear();
    if (typeof this.model.off === "function") this.model.off("msg:custom", this._onMsg);
  }
}

/** The sentence shown for a request that has no answer (yet). */
export function waitingText(status, what) {
  if (status === "offline") return `${what} needs the Python kernel; this page has none (an offline export). Open the notebook to ask.`;
  if (status === "busy") return `No reply from the kernel yet: it is busy (a cell is running). ${what} will appear when it is free.`;
  if (status === "pending") return `asking the kernel…`;
  return "";
}

/**
 * The probe panel. st: {status, reply, message, x, y, epoch}; ctx: {classes,
 * classRGB, thumbs, localOf, onPick(global), onClose}.
 */
export function renderProbe(el, st, ctx) {
  if (!st) {
    el.hidden = true;
    setChildren(el);
    return;
  }
  el.hidden = false;
  const head = h("div", { class: "dvi-probe-head" },
    h("b", { text: "probe" }), ` at (${fmt(st.x, 2)}, ${fmt(st.y, 2)}), epoch ${st.epoch}`,
    h("button", { type: "button", class: "dvi-close", title: "close", "aria-label": "close probe", text: "×", onclick: ctx.onClose }));
  if (st.status !== "ok") {
    const text = st.status === "error" ? `the kernel could not probe: ${st.message}` : waitingText(st.status, "Probing the map");
    setChildren(el, head, h("div", { class: `dvi-probe-status dvi-status-${st.status}`, role: "status", text }));
    return;
  }
  const r = st.reply;
  const order = r.probabilities.map((p, c) => [p, c]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const bars = order.map(([p, c]) => h("div", { class: "dvi-prob-row" },
    h("span", { class: "dvi-prob-name", text: ctx.classes[c] }),
    h("span", { class: "dvi-prob-bar" }, h("span", { style: { width: `${Math.round(p * 100)}%`, background: hex(ctx.classRGB[c]) } })),
    h("span", { class: "dvi-num", text: fmt(p, 3) })));
  let where;
  if (r.distance == null || !Number.isFinite(r.distance)) {
    where = "distance to the data unknown (this run keeps no features); nearest samples on the map:";
  } else {
    const pct = Math.round(100 * r.distance_percentile);
    where = r.extrapolating
      ? `extrapolating: the decoded point is farther from every sample (${fmt(r.distance, 2)}) than ${pct}% of samples are from their nearest neighbour. The map here is the decoder's guess.`
      : `backed by data: the decoded point lies ${fmt(r.distance, 2)} from the nearest sample, nearer than ${100 - pct}% of samples are to their own nearest neighbour.`;
  }
  const near = r.nearest.map((g, k) => nearCell(g, r.nearest_distance[k], ctx));
  setChildren(el, head,
    h("div", { class: "dvi-probe-pred" }, "decodes to ", h("b", { text: ctx.classes[r.prediction] })),
    h("div", { class: "dvi-probs" }, bars),
    h("div", { class: `dvi-probe-where${r.extrapolating ? " dvi-extrapolating" : ""}`, text: where }),
    h("div", { class: "dvi-probe-near" }, near));
}

function nearCell(g, d, ctx) {
  const i = g < ctx.localOf.length ? ctx.localOf[g] : -1;
  const thumb = i >= 0 ? ctx.thumbs.canvas(i, "dvi-thumb-small") : null;
  return h("button", { type: "button", class: "dvi-near", "data-index": String(g), title: `sample ${g}`, onclick: () => ctx.onPick(g) },
    thumb, h("span", { text: `#${g}` }), h("span", { class: "dvi-muted", text: fmt(d, 2) }));
}

/**
 * The inspector's neighbour list. st: {status, reply, message}; reply: {rows:
 * [{sample, label, prediction, distance, distance_2d, in_2d}], rate, k, source}.
 */
export function renderNeighbours(el, st, ctx) {
  if (!st) {
    setChildren(el);
    return;
  }
  const title = h("div", { class: "dvi-nb-title" }, h("b", { text: "nearest in feature space" }));
  if (st.status !== "ok") {
    const text = st.status === "error" ? `the kernel could not list neighbours: ${st.message}` : waitingText(st.status, "The neighbour list");
    setChildren(el, title, h("div", { class: `dvi-nb-status dvi-status-${st.status}`, role: "status", text }));
    return;
  }
  const r = st.reply;
  const kept = r.rows.filter((x) => x.in_2d).length;
  const verdict = r.rate >= 0.6 ? "the map keeps this neighbourhood: what sits around it on the map is what is near it"
    : r.rate >= 0.3 ? "the map keeps part of this neighbourhood" : "the map scatters this neighbourhood: read its surroundings with care";
  const cells = r.rows.map((x) => {
    const i = x.sample < ctx.localOf.length ? ctx.localOf[x.sample] : -1;
    const thumb = i >= 0 ? ctx.thumbs.canvas(i, "dvi-thumb-small") : null;
    return h("button", { type: "button", class: `dvi-nb${x.in_2d ? " dvi-nb-kept" : ""}`, "data-index": String(x.sample),
      title: `sample ${x.sample}: label ${ctx.classes[x.label]}, predicted ${ctx.classes[x.prediction]}; distance ${fmt(x.distance, 3)} (map ${fmt(x.distance_2d, 3)}); ${x.in_2d ? "also" : "not"} a 2-D neighbour`,
      onclick: () => ctx.onPick(x.sample) },
    thumb, h("span", { class: "dvi-nb-idx", text: `#${x.sample}` }), h("span", { class: "dvi-nb-d", text: fmt(x.distance, 2) }),
    h("span", { class: "dvi-nb-2d", text: x.in_2d ? "✓ 2-D" : "✗ 2-D" }));
  });
  setChildren(el, title,
    h("div", { class: "dvi-nb-summary", text: `${kept} of ${r.rows.length} are also 2-D neighbours (rate ${fmt(r.rate, 2)}): ${verdict}.` }),
    h("div", { class: "dvi-nb-grid" }, cells));
}
