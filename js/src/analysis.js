/**
 * The analysis views, wired to the app: colouring by a training-dynamics
 * statistic (colour bar, range filter), the cartography view whose lasso
 * selects on the map, search and jump, the selection's breakdown, the
 * inspector's neighbour list and the map probe. The app calls the hooks
 * (`onSelection`, `onEpoch`, `afterOrder`, `onInspect`, `probeAt`,
 * `drawOverlay`); everything else lives here and in the modules it uses.
 */
import { h } from "./dom.js";
import { decodeDynamics, renderColorBar } from "./dynamics.js";
import { CartographyView, MARGIN, cartographyLayout } from "./cartography.js";
import { buildSearch, parseQuery, renderBreakdown, selectionBreakdown } from "./search.js";
import { KernelChannel, renderNeighbours, renderProbe } from "./probe.js";
import { combineSelection } from "./lasso.js";
import { toData } from "./view.js";
import { STYLE } from "./style.js";

export class AnalysisViews {
  /** app: the DVIApp (its data, els, composer, store, playback, selection and view methods). */
  constructor(app, model) {
    this.app = app;
    this.model = model;
    const els = app.els;
    this.dyn = null;
    this.probeState = null;
    this.nbState = null;
    this.channel = new KernelChannel(model, app.data.meta.kernel !== false);
    // toolbar: the probe mode and the search box
    els.probeBtn = h("button", { class: "dvi-btn dvi-mode-probe", type: "button", text: "⌖ probe",
      title: "click the map to decode that location (or Ctrl/⌘-click in any mode): class probabilities, nearest samples, distance to the data" });
    els.probeBtn.addEventListener("click", () => app.guard(() => app.setMode(app.mode === "probe" ? "pan" : "probe")));
    els.lassoBtn.after(els.probeBtn);
    this.searchEl = h("div", { class: "dvi-group dvi-search" });
    els.root.querySelector(".dvi-toolbar").append(this.searchEl);
    buildSearch(this.searchEl, (text) => app.guard(() => this.search(text)) || "");
    // side panels: colour bar, breakdown, probe, cartography
    this.colorBarEl = h("div", { class: "dvi-panel dvi-colorbar", hidden: true });
    this.breakdownEl = h("div", { class: "dvi-panel dvi-breakdown", hidden: true });
    this.probeEl = h("div", { class: "dvi-panel dvi-probe", hidden: true });
    this.cartoEl = h("div", { class: "dvi-panel dvi-carto", hidden: true });
    els.legendEl.after(this.colorBarEl);
    els.inspectorEl.before(this.probeEl);
    els.inspectorEl.after(this.cartoEl, this.breakdownEl);
    this.nbEl = h("div", { class: "dvi-neighbours" });
    this.carto = new CartographyView(this.cartoEl, (hits, mode) => this._cartoLasso(hits, mode), (fn) => app.guard(fn));
    this.readDynamics();
  }

  // ---------- dynamics: colouring, colour bar, filter, cartography ----------

  /** (Re)decode the `dynamics` trait (Python sends it once, again when epochs are added). */
  readDynamics() {
    const info = this.model.get("dynamics_info") || {};
    const raw = this.model.get("dynamics");
    const bytes = raw && raw.buffer ? new Uint8Array(raw.buffer, raw.byteOffset || 0, raw.byteLength) : raw;
    this.dyn = decodeDynamics(bytes, info, this.app.data.n);
    this.app.data.dynamics = this.dyn;
    const sel = this.app.els.colorSel;
    sel.querySelectorAll("optgroup.dvi-dyn-options").forEach((g) => g.remove());
    if (this.dyn) {
      const group = h("optgroup", { class: "dvi-dyn-options", label: "training dynamics" },
        this.dyn.columns.map((c) => h("option", { value: c, text: `colour: ${c.replace(/_/g, " ")}`, title: (info.descriptions || {})[c] || "" })));
      sel.append(group);
      sel.value = this.app.opts.colorBy;
    }
    this.cartoEl.hidden = !(this.dyn && this.dyn.values.variability && this.dyn.values.confidence);
    this._colorBarKey = null;
    this.refreshPanels();
  }

  refreshPanels() {
    const o = this.app.opts;
    this.app.els.probeBtn.classList.toggle("dvi-active", this.app.mode === "probe");
    const key = `${o.colorBy}|${this.dyn ? this.dyn.columns.join(",") : ""}`;
    if (key !== this._colorBarKey) {
      this._colorBarKey = key;
      // the range filter belongs to the statistic coloured: colouring by something else clears it
      if (o.dynFilter && o.dynFilter.column !== o.colorBy && this.dyn) this.app.setOption("dynFilter", null);
      this.colorBar = renderColorBar(this.colorBarEl, { dyn: this.dyn, colorBy: o.colorBy, filter: o.dynFilter },
        (f) => this.app.guard(() => this.app.setOption("dynFilter", f)));
    } else if (this.colorBar) {
      this.colorBar.setFilter(o.dynFilter);
    }
  }

  /** After the composer recomputed colours / visibility / selection: redraw the cartography view. */
  afterOrder() {
    if (this.cartoEl.hidden || !this.dyn) return;
    const app = this.app, c = app.composer;
    const w = Math.max(160, Math.min(320, this.cartoEl.clientWidth - 12 || 240));
    this.carto.width = w;
    this.carto.height = Math.round(w * 0.75);
    this.carto.update({
      variability: this.dyn.values.variability,
      confidence: this.dyn.values.confidence,
      colors: c.colors,
      visible: c.visible,
      selMask: app.selMask,
      anySelected: app.selected.size > 0,
      dim: STYLE.points.dim,
      fg: app._cssVar("--dvi-fg", "#333"),
    });
  }

  /** The cartography plot's axes and plot area (CSS px inside its canvas), for tests and the console. */
  cartoLayout() {
    if (!this.dyn) return null;
    const c = this.carto;
    return { ...cartographyLayout(this.dyn.values.variability), left: MARGIN.left, top: MARGIN.top,
      width: c.width - MARGIN.left - MARGIN.right, height: c.height - MARGIN.top - MARGIN.bottom };
  }

  _cartoLasso(hits, mode) {
    const app = this.app;
    const globals = Array.from(hits, (i) => app.data.globalIndex(i));
    app.setSelection(combineSelection(app.selected, globals, mode));
  }

  // ---------- selection breakdown and search ----------

  onSelection() {
    const app = this.app, e = app.currentEpoch();
    const b = selectionBreakdown(app.selMask, app.data.labels, e ? e.predictions : null, app.data.classes.length);
    renderBreakdown(this.breakdownEl, b, { classes: app.data.classes, classRGB: app.data.classRGB, hiddenCount: app.selected.size - b.total });
  }

  /** The epoch shown changed: the breakdown's correct / wrong counts follow (neighbours follow via onInspect). */
  onEpoch() {
    this.onSelection();
  }

  /** Run a search string; returns a message for the search box ("" when it worked). */
  search(text) {
    const app = this.app, d = app.data;
    const q = parseQuery(text, d.classes, d.meta.n_samples);
    if (!q) return "";
    if (q.kind === "error") return q.message;
    if (q.kind === "class") {
      const globals = [];
      for (let i = 0; i < d.n; i++) if (d.labels[i] === q.cls) globals.push(d.globalIndex(i));
      app.setSelection(new Set(globals));
      return `${globals.length} samples labelled ${d.classes[q.cls]}`;
    }
    const i = q.index < d.localOf.length ? d.localOf[q.index] : -1;
    if (i < 0) return `sample ${q.index} is not among the displayed points (max_points)`;
    app.setSelection(new Set([q.index]));
    app.inspect(i);
    const e = app.currentEpoch();
    if (e) app.centreOn(e.positions[2 * i], e.positions[2 * i + 1]);
    return "";
  }

  // ---------- inspector: neighbours ----------

  /** Called after the inspector panel is drawn for display position i (null: closed). */
  onInspect(i) {
    if (i == null) {
      if (this.nbReq) this.channel.cancel(this.nbReq);
      this.nbState = null;
      return;
    }
    this.app.els.inspectorEl.append(this.nbEl);
    const e = this.app.currentEpoch();
    const key = `${i}|${e ? e.epoch : ""}`;
    if (key !== this._nbKey) this._askNeighbours(i);
    else this._drawNeighbours();
  }

  _askNeighbours(i) {
    const app = this.app, e = app.currentEpoch();
    if (!e) return;
    this._nbKey = `${i}|${e.epoch}`;
    if (this.nbReq) this.channel.cancel(this.nbReq);
    const g = app.data.globalIndex(i);
    this.nbReq = this.channel.request("neighbours", { epoch: e.epoch, index: g, k: 15 }, (st) => {
      this.nbState = st;
      this._drawNeighbours();
    });
  }

  _drawNeighbours() {
    const app = this.app;
    renderNeighbours(this.nbEl, this.nbState, {
      classes: app.data.classes, thumbs: app.thumbs, localOf: app.data.localOf,
      onPick: (g) => app.guard(() => this._pick(g)),
    });
    this.nbEl.dataset.status = this.nbState ? this.nbState.status : "";
  }

  _pick(g) {
    const i = g < this.app.data.localOf.length ? this.app.data.localOf[g] : -1;
    if (i >= 0) this.app.inspect(i);
  }

  // ---------- probe ----------

  /** Probe the map at screen position (sx, sy) of the current view. */
  probeAt(sx, sy) {
    const app = this.app, e = app.currentEpoch();
    if (!e) return;
    const [x, y] = toData(app.view(), app.renderer.width, app.renderer.height, sx, sy);
    if (this.probeReq) this.channel.cancel(this.probeReq);
    const base = { x, y, epoch: e.epoch };
    this.probeReq = this.channel.request("probe", { epoch: e.epoch, x, y, k: 6 }, (st) => {
      this.probeState = { ...base, ...st };
      this._drawProbe();
    });
    app.invalidate();
  }

  _drawProbe() {
    const app = this.app;
    renderProbe(this.probeEl, this.probeState, {
      classes: app.data.classes, classRGB: app.data.classRGB, thumbs: app.thumbs, localOf: app.data.localOf,
      onPick: (g) => app.guard(() => this._pick(g)),
      onClose: () => app.guard(() => this.closeProbe()),
    });
    this.probeEl.dataset.status = this.probeState ? this.probeState.status : "";
    app.invalidate();
  }

  closeProbe() {
    if (this.probeReq) this.channel.cancel(this.probeReq);
    this.probeState = null;
    this._drawProbe();
  }

  /** The probe's marker on the map overlay (a crosshair at the probed location). */
  drawOverlay(ctx, project) {
    const p = this.probeState;
    if (!p) return;
    const [sx, sy] = project(p.x, p.y);
    ctx.save();
    ctx.strokeStyle = this.app._cssVar("--dvi-fg", "#222");
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(sx, sy, 6, 0, 2 * Math.PI);
    ctx.moveTo(sx - 10, sy);
    ctx.lineTo(sx - 3, sy);
    ctx.moveTo(sx + 3, sy);
    ctx.lineTo(sx + 10, sy);
    ctx.moveTo(sx, sy - 10);
    ctx.lineTo(sx, sy - 3);
    ctx.moveTo(sx, sy + 3);
    ctx.lineTo(sx, sy + 10);
    ctx.stroke();
    ctx.restore();
  }

  hasOverlay() {
    return !!this.probeState;
  }

  dispose() {
    this.channel.dispose();
  }
}

