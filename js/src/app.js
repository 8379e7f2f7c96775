/**
 * The widget's application: wires the modules together and holds the little
 * state that belongs to no module (the mode, the view, the selection, hover,
 * inspector, lasso). Each job lives in its own module:
 *   sync.js      model/trait sync (reads traits, writes only the page's own)
 *   playback.js  epoch at rest, glides, play/pause
 *   input.js     keyboard, pointer, wheel, controls -> the actions below
 *   frame.js     positions, filters, colours, draw order, point radius/opacity
 *   renderer.js  Canvas2D map and points; overlay.js trails, rings, lasso
 *   controls.js, panels.js  DOM, from plain data
 *   analysis.js  training dynamics, cartography, search, neighbours, probe
 * The model is used only through get / set / on / off / save_changes and the
 * host's child-model lookup, so the offline export can drive the same code.
 */
import { readStatic, ModelSync } from "./sync.js";
import { readMeta } from "./protocol.js";
import { Playback } from "./playback.js";
import { bindInput } from "./input.js";
import { FrameComposer, pointStyle } from "./frame.js";
import { buildDom, syncControls } from "./controls.js";
import { renderLegend, renderMetrics, renderTooltip, renderInspector } from "./panels.js";
import { drawTrails, drawLasso, ring, trailPoints } from "./overlay.js";
import { fitView, zoomAt, panBy, toScreen } from "./view.js";
import { classCounts, sampleHistory } from "./filters.js";
import { pointsInPolygon, combineSelection } from "./lasso.js";
import { EpochStore } from "./store.js";
import { MapRenderer } from "./renderer.js";
import { ThumbAtlas } from "./thumbs.js";
import { STYLE, mapAspect } from "./style.js";
import { DebugHandle } from "./debug.js";
import { AnalysisViews } from "./analysis.js";

/** A frame rendered ahead (`_renderAhead`) starts this long after the last change at rest. */
const RENDER_AHEAD_AFTER_MS = 150;

export class DVIApp {
  constructor({ model, el, host, onError }) {
    this.onError = onError;
    this.disposers = [];
    this.sync = new ModelSync(model);
    this.data = readStatic(model);
    this.els = buildDom(el);
    this.root = this.els.root;
    this.renderer = new MapRenderer(this.els.mapEl);
    this.composer = new FrameComposer(this.data.n);
    this.thumbs = new ThumbAtlas(this.data.thumbBytes, this.data.meta.thumbnail_shape, this.data.n);
    this.opts = this.sync.options();
    this.mode = "pan";
    this.viewRel = this.sync.view(); // null: fitted to the extent; else {cx, cy, zoom}
    this.hover = null;
    this.inspected = null;
    this.lasso = null;
    this.stats = { frameTimes: [], lastBreakdown: null, lastLasso: null, lastHitTestMs: null, drawnAt: 0, trails: null };
    this.selMask = new Uint8Array(this.data.n);
    this.selVersion = 0;
    this._selectionFromModel();
    this.playback = new Playback(() => this.store.numbers(), (kind) => this._onPlayback(kind));
    this.playback.pending = this.sync.epoch();
    this.store = new EpochStore(model, host, this.data.n, this.data.classes.length, (e) => this._onEpochLoaded(e), onError);
    this.analysis = new AnalysisViews(this, model);
    this.analysis.onSelection();
    this.sync.bind(this._modelHandlers(), (fn) => this.guard(fn));
    this.disposers.push(bindInput(this.els, this._actions(), (fn) => this.guard(fn)));
    this._observe();
    this._applyAspect();
    this._syncControls();
    this.invalidate(true);
    this.root.dvi = new DebugHandle(this); // the one debug handle (debug.js); nothing reads it in production
  }

  guard(fn) {
    try {
      return fn();
    } catch (err) {
      this.onError(err);
    }
  }

  // ---------- size, visibility and theme ----------

  /**
   * Redraw whenever the map may look different without any input: its size
   * changed (window, sidebar, a theme switch that collapsed it for a frame),
   * it became visible again, or the theme's colours changed.
   */
  _observe() {
    const again = () => this.invalidate(true);
    if (typeof ResizeObserver === "function") {
      const ro = new ResizeObserver(again);
      ro.observe(this.els.mapEl);
      this.disposers.push(() => ro.disconnect());
    }
    if (typeof IntersectionObserver === "function") {
      const io = new IntersectionObserver(again);
      io.observe(this.els.mapEl);
      this.disposers.push(() => io.disconnect());
    }
    if (typeof MutationObserver === "function" && document.body) {
      // JupyterLab marks its theme on body (data-jp-theme-*) and swaps stylesheets in head
      const mo = new MutationObserver(again);
      mo.observe(document.body, { attributes: true });
      mo.observe(document.head, { childList: true });
      this.disposers.push(() => mo.disconnect());
    }
    const onVis = () => document.visibilityState === "visible" && again();
    document.addEventListener("visibilitychange", onVis);
    window.addEventListener("resize", again);
    this.disposers.push(() => document.removeEventListener("visibilitychange", onVis));
    this.disposers.push(() => window.removeEventListener("resize", again));
  }

  /** The map element takes the data's aspect ratio (style.json view), so the data fills it. */
  _applyAspect() {
    const a = mapAspect(this.data.meta.extent);
    this.root.style.setProperty("--dvi-aspect", String(a));
  }

  // ---------- model -> page ----------

  _modelHandlers() {
    return {
      epochData: () => this.store.sync(),
      epoch: (e) => {
        this.stats.epochChangeAt = Date.now(); // when Python's change reached the page (the benchmark's latency split)
        const pb = this.playback;
        if (e == null || e === pb.current || (pb.transition && pb.transition.to === e)) return;
        pb.pause();
        pb.jumpTo(e);
        this.invalidate(true);
      },
      selected: () => {
        this._selectionFromModel();
        this._syncControls();
        this.invalidate();
      },
      option: (key, value) => {
        this.opts[key] = value;
        this._syncControls();
        this.invalidate();
      },
      view: (v) => {
        this.viewRel = v;
        this.invalidate(true);
      },
      dynamics: () => {
        this.analysis.readDynamics();
        this.composer.resetColors();
        this._dropAhead();
        this.invalidate();
      },
      meta: () => {
        this.data.meta = readMeta(this.sync.model.get("meta"));
        this._applyAspect();
        this._syncControls();
        this.invalidate(true);
      },
    };
  }

  _selectionFromModel() {
    const sel = this.sync.selected();
    this.selected = new Set(sel);
    this.selMask.fill(0);
    const { localOf } = this.data;
    for (const g of sel) {
      const i = g < localOf.length ? localOf[g] : -1;
      if (i >= 0) this.selMask[i] = 1;
    }
    this.selVersion++;
    if (this.analysis) this.analysis.onSelection();
  }

  // ---------- page -> model ----------

  setSelection(globalSet) {
    this.sync.setSelected(globalSet);
    this._selectionFromModel();
    this._syncControls();
    this.invalidate();
  }

  setOption(key, value) {
    this.opts[key] = value;
    this.sync.setOption(key, value);
    this._syncControls();
    this.invalidate();
  }

  _actions() {
    const now = () => performance.now();
    return {
      togglePlay: () => (this.playback.toggle(now()), this.invalidate()),
      seekIndex: (k) => (this.playback.seekIndex(k), this.invalidate(true)),
      setSpeed: (s) => (this.playback.speed = s),
      setOption: (key, value) => this.setOption(key, value),
      setMode: (m) => this.setMode(m),
      mode: () => this.mode,
      clearSelection: () => this.setSelection(new Set()),
      resetView: () => this.resetView(),
      step: (d) => {
        this.playback.pause();
        this.playback.step(d, now());
        this.invalidate();
      },
      escape: () => {
        this.lasso = null;
        this.inspect(null);
        this.analysis.closeProbe();
      },
      zoomAt: (sx, sy, f) => this._setView(zoomAt(this.view(), this.renderer.width, this.renderer.height, sx, sy, f), 250),
      panBy: (dx, dy) => this._setView(panBy(this.view(), dx, dy), null),
      panEnd: () => this.sync.saveView(this.viewRel, 0),
      hover: (i) => this.setHover(i),
      hoverAt: (sx, sy) => this.setHover(this.nearest(sx, sy)),
      clickAt: (sx, sy, ev) => {
        this.lasso = null;
        // probe mode, or Ctrl / Cmd + click in any mode: decode the location (analysis.js)
        if (this.mode === "probe" || (ev && (ev.ctrlKey || ev.metaKey))) this.analysis.probeAt(sx, sy);
        else this.inspect(this.nearest(sx, sy));
      },
      lassoStart: (sx, sy) => (this.lasso = [sx, sy]),
      lassoExtend: (sx, sy) => (this.lasso.push(sx, sy), this.invalidate()),
      lassoEnd: (mode) => this.finishLasso(this.lasso, mode),
    };
  }

  setMode(mode) {
    this.mode = mode;
    this._syncControls();
  }

  // ---------- view ----------

  _fit() {
    return fitView(this.data.meta.extent, this.renderer.width || 1, this.renderer.height || 1);
  }

  /** The data -> screen transform now: {cx, cy, k} (k: CSS px per data unit). */
  view() {
    const fit = this._fit();
    return this.viewRel ? { cx: this.viewRel.cx, cy: this.viewRel.cy, k: fit.k * this.viewRel.zoom } : fit;
  }

  /** Zoom relative to the fitted view. */
  zoom() {
    return this.viewRel ? this.viewRel.zoom : 1;
  }

  _setView(v, saveDelay) {
    this.viewRel = { cx: v.cx, cy: v.cy, zoom: v.k / this._fit().k };
    if (saveDelay != null) this.sync.saveView(this.viewRel, saveDelay);
    this.invalidate(true);
  }

  /** Centre the view on data point (x, y), keeping the zoom. */
  centreOn(x, y) {
    this._setView({ cx: x, cy: y, k: this.view().k }, 0);
  }

  resetView() {
    this.viewRel = null;
    this.sync.saveView(null, 0);
    this.invalidate(true);
  }

  // ---------- epochs ----------

  currentEpoch() {
    return this.playback.current == null ? null : this.store.get(this.playback.current);
  }

  _onEpochLoaded(e) {
    this._decodeBackground(e);
    if (e.epoch === this.playback.pending) {
      this.playback.pause();
      this.playback.jumpTo(e.epoch);
    }
    if (this.inspected != null) this._renderInspector();
    this._syncControls();
    this.invalidate(true);
  }

  _decodeBackground(e) {
    if (!e.background || !e.background.length || typeof createImageBitmap !== "function") return;
    createImageBitmap(new Blob([e.background], { type: "image/png" }))
      .then((bmp) => {
        e.bitmap = bmp;
        this._aheadKey = null; // paint it ahead too
        this.invalidate(true);
      })
      .catch((err) => this.onError(err));
  }

  _onPlayback(kind) {
    if (kind === "epoch") {
      this.sync.setEpoch(this.playback.current);
      this.composer.reset();
      if (this.inspected != null) this._renderInspector();
      this.analysis.onEpoch();
      this.bgDirty = true;
    } else if (kind === "glide") {
      // paint the next map between frames, not in the frame that switches to it
      const to = this.store.get(this.playback.transition.to);
      setTimeout(() => this.guard(() => this.renderer.prepare(this.view(), to, this._mapFill())), 0);
    }
    this._syncControls();
    this.invalidate();
  }

  // ---------- panels ----------

  _syncControls() {
    const pb = this.playback;
    syncControls(this.els, {
      opts: this.opts,
      mode: this.mode,
      playing: pb ? pb.playing : false,
      speed: pb ? pb.speed : 1,
      numbers: this.store ? this.store.numbers() : [],
      current: pb ? pb.current : null,
      selectedCount: this.selected.size,
      pointAlpha: this.pointStyle ? this.pointStyle.alpha : null,
    });
    this._renderLegend();
    this._renderMetrics();
    if (this.analysis) this.analysis.refreshPanels();
  }

  _renderLegend() {
    const o = this.opts;
    const key = `${o.split}|${o.colorBy}|${[...o.hidden].join(",")}`;
    if (key === this._legendKey) return;
    this._legendKey = key;
    const { classes, classRGB, labels, isTest } = this.data;
    renderLegend(
      this.els.legendEl,
      { classes, classRGB, counts: classCounts(labels, isTest, o.split, classes.length), hidden: o.hidden, colorBy: o.colorBy },
      {
        onToggle: (c) => {
          const hidden = new Set(o.hidden);
          hidden.has(c) ? hidden.delete(c) : hidden.add(c);
          this.setOption("hidden", hidden);
        },
        onIsolate: (c) => {
          const C = classes.length;
          const only = o.hidden.size === C - 1 && !o.hidden.has(c);
          this.setOption("hidden", only ? new Set() : new Set([...Array(C).keys()].filter((k) => k !== c)));
        },
      },
    );
  }

  _renderMetrics() {
    const e = this.currentEpoch();
    const all = this.store ? this.store.epochs.map((x) => x.metrics) : [];
    const key = `${e ? e.epoch : ""}|${all.length}`;
    if (key === this._metricsKey) return;
    this._metricsKey = key;
    renderMetrics(this.els.metricsEl, { epoch: e ? e.epoch : null, metrics: e ? e.metrics : null, allMetrics: all, summary: this.data.meta.summary });
  }

  setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    const tip = this.els.tooltip;
    if (i == null) {
      tip.hidden = true;
    } else {
      const d = this.data, e = this.currentEpoch();
      const pred = e ? e.predictions[i] : null;
      renderTooltip(tip, {
        index: d.globalIndex(i), isTest: !!d.isTest[i], label: d.classes[d.labels[i]],
        prediction: pred == null ? null : d.classes[pred], wrong: pred != null && pred !== d.labels[i],
        confidence: e ? e.confidence[i] : null, thumb: this.thumbs.canvas(i, "dvi-thumb"),
      });
      tip.hidden = false;
      const W = this.renderer.width, H = this.renderer.height;
      const x = this.composer.xs[i], y = this.composer.ys[i];
      tip.style.left = x < W * 0.6 ? `${x + 12}px` : "";
      tip.style.right = x < W * 0.6 ? "" : `${W - x + 12}px`;
      tip.style.top = y < H * 0.6 ? `${y + 12}px` : "";
      tip.style.bottom = y < H * 0.6 ? "" : `${H - y + 12}px`;
      tip.dataset.index = String(d.globalIndex(i));
    }
    this.invalidate();
  }

  inspect(i) {
    this.inspected = i;
    this._renderInspector();
    this.invalidate();
  }

  _renderInspector() {
    const i = this.inspected, d = this.data;
    if (i == null) {
      renderInspector(this.els.inspectorEl, null);
      return this.analysis.onInspect(null);
    }
    const cur = this.currentEpoch();
    renderInspector(
      this.els.inspectorEl,
      {
        index: d.globalIndex(i), isTest: !!d.isTest[i], label: d.classes[d.labels[i]], classes: d.classes, classRGB: d.classRGB,
        history: sampleHistory(this.store.epochs, i), current: cur ? cur.epoch : null,
        prediction: cur ? d.classes[cur.predictions[i]] : null, confidence: cur ? cur.confidence[i] : null,
        thumb: this.thumbs.canvas(i, "dvi-thumb-large"),
      },
      () => this.inspect(null),
    );
    this.analysis.onInspect(i);
  }

  // ---------- selection ----------

  /** Select the visible points inside a screen-space polygon (flat [x0, y0, ...]). */
  finishLasso(poly, mode = "replace") {
    this.lasso = null;
    this.stats.lastLasso = Array.from(poly);
    this.composer.placeAll(); // mid-glide only a subset was placed
    const t0 = performance.now();
    const hits = pointsInPolygon(this.composer.xs, this.composer.ys, poly, this.composer.visible);
    this.stats.lastHitTestMs = performance.now() - t0;
    const globals = Array.from(hits, (i) => this.data.globalIndex(i));
    this.setSelection(combineSelection(this.selected, globals, mode));
    return hits;
  }

  /** Display position of the visible point nearest to (sx, sy) within the hover radius. */
  nearest(sx, sy) {
    if (this.composer.partial) return null; // mid-glide with a subset placed: no hover on stale positions
    const R = STYLE.interaction.hover_radius;
    let best = -1, bestD = R * R;
    const { xs, ys, visible } = this.composer;
    for (let i = 0; i < this.data.n; i++) {
      if (!visible[i]) continue;
      const dx = xs[i] - sx, dy = ys[i] - sy;
      const d2 = dx * dx + dy * dy;
      if (d2 <= bestD) {
        bestD = d2;
        best = i;
      }
    }
    return best < 0 ? null : best;
  }

  // ---------- frames ----------

  invalidate(full = false) {
    if (full) this.bgDirty = true;
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.guard(() => this.frame());
    });
  }

  _cssVar(name, fallback) {
    const v = getComputedStyle(this.root).getPropertyValue(name).trim();
    return v || fallback;
  }

  _mapFill() {
    return this._cssVar("--dvi-map-bg", STYLE.map.background_fallback);
  }

  frame() {
    if (!this.root.isConnected) return;
    const t0 = performance.now();
    if (this.renderer.resize()) this.bgDirty = true;
    if (!this.renderer.ready) return; // hidden or not laid out: the observers call again
    const els = this.els, pb = this.playback;
    const nums = this.store.numbers();
    if (nums.length === 0) {
      els.messageEl.hidden = false;
      els.messageEl.textContent = this.data.meta.live ? "waiting for the first epoch…" : "no epochs";
      return;
    }
    els.messageEl.hidden = true;
    if (pb.current == null) {
      if (pb.pending != null && !this.store.get(pb.pending)) return; // still loading
      pb.jumpTo(pb.pending != null ? pb.pending : nums[nums.length - 1]);
    }
    const st = pb.advance(t0);
    const from = this.store.get(st.from), to = this.store.get(st.to);
    const W = this.renderer.width, H = this.renderer.height;
    const view = this.view();
    // at rest on an epoch rendered ahead (`_renderAhead`): its composer, and its picture when still valid
    const ahead = st.moving ? null : this._takeAhead(to.epoch);
    const c = this.composer;
    const k = this.store.indexOf(to.epoch);
    const previous = k > 0 ? this.store.epochs[k - 1].predictions : null;
    const nVisible = c.countVisible(to, this.data, this.opts, previous);
    const ps = pointStyle(nVisible, W, H, this.zoom(), this.opts.pointSize, this.opts.pointOpacity);
    this.pointStyle = ps;
    this.renderer.setRadius(ps.radius);
    if (c.order(to, this.data, this.opts, previous, this._selState(), ps) || ahead) {
      this._syncControls();
      this.analysis.afterOrder();
    }
    // The map switches part-way through a glide (a cross-fade would repaint it every frame).
    const shown = st.moving && st.t < STYLE.map.switch_at ? from : to;
    // At rest, a frame that changes only the overlay (hover, inspector ring, lasso, probe) keeps
    // the map and points on the canvas as they are: at 1,000,000 points redrawing them cost ~50 ms.
    const fill = this._mapFill();
    const layerKey = st.moving ? null : this._layerKeyOf(to.epoch, view, c.drawn(), fill);
    // (a full invalidation alone does not force a redraw: what it may change, size, theme fill,
    // view, epoch, map bitmap, is in the key or compared here)
    const keep = layerKey !== null && layerKey === this._layerKey && shown === this._bgShown &&
      shown.bitmap === this._bgBitmap && this.renderer.hasPoints();
    this._layerKey = layerKey;
    let t1 = t0, t2 = t0, t3 = t0;
    this.stats.readyMade = false;
    if (!keep) {
      // mid-glide with very many points: a subset moves and is drawn (style.json playback.glide_points)
      const glide = st.moving && st.t > 0 && st.t < 1 ? c.glidePasses() : null;
      const readyMade = ahead && ahead.layerKey === layerKey && ahead.bitmap === to.bitmap;
      if (!readyMade) c.place(from, to, st.t, view, W, H, glide ? glide.indices : null);
      t1 = performance.now();
      if (this.bgDirty || shown !== this._bgShown || shown.bitmap !== this._bgBitmap) {
        this.renderer.drawBackground(view, shown, fill);
        this.bgDirty = false;
        this._bgShown = shown;
        this._bgBitmap = shown.bitmap;
      }
      t2 = performance.now();
      if (readyMade) this.renderer.putWords(ahead.words);
      else this.renderer.drawPoints(c.xs, c.ys, glide ? glide.passes : c.passes);
      this.stats.readyMade = !!readyMade;
      this.stats.glideEvery = glide ? glide.every : 1;
      t3 = performance.now();
    }
    this.stats.layerKept = keep;
    this._drawOverlay(view, W, H);
    const t4 = performance.now();
    const s = this.stats;
    s.lastBreakdown = keep ? { positions: 0, background: 0, points: 0, overlay: t4 - t0, kept: true }
      : { positions: t1 - t0, background: t2 - t1, points: t3 - t2, overlay: t4 - t3, ahead: !!this.stats.readyMade };
    if (!keep) s.lastComposed = s.lastBreakdown;
    s.frameTimes.push(t4 - t0);
    if (s.frameTimes.length > 2000) s.frameTimes.splice(0, 1000);
    if (pb.transition) this.invalidate();
    else {
      this.root.dataset.drawnEpoch = String(pb.current);
      s.drawnAt = Date.now();
      if (!s.epochDrawn || s.epochDrawn.epoch !== pb.current) {
        // the first frame at rest showing this epoch (the benchmark's `w.epoch = k` latency)
        s.epochDrawn = { epoch: pb.current, at: s.drawnAt, frameMs: t4 - t0, ahead: !!s.readyMade, changeAt: s.epochChangeAt };
      }
      this._paintAhead(view);
      this._renderAhead(view, layerKey);
    }
  }

  _selState() {
    return { mask: this.selMask, size: this.selected.size, version: this.selVersion };
  }

  /** What the map-and-points layer of a frame at rest depends on (composer.drawn(): colours, filters, selection, style). */
  _layerKeyOf(epoch, view, drawn, fill) {
    return [epoch, view.cx, view.cy, view.k, this.renderer.width, this.renderer.height, this.renderer.dpr, drawn, fill].join("|");
  }

  /**
   * The epoch rendered ahead, if any: its composer becomes the one shown (the
   * one shown before is kept for the next render ahead). Returns the entry
   * ({composer, words, layerKey, bitmap}) or null.
   */
  _takeAhead(epoch) {
    const entry = this._ahead && this._ahead.get(epoch);
    if (!entry) return null;
    this._ahead.delete(epoch);
    if (entry.composer === this.composer) return null;
    this._spare.push(this.composer);
    this.composer = entry.composer;
    return entry;
  }

  /** Forget the frames rendered ahead (their data changed). */
  _dropAhead() {
    if (!this._ahead) return;
    for (const e of this._ahead.values()) this._spare.push(e.composer);
    this._ahead.clear();
  }

  /**
   * At rest, render the frames of the epochs next to the one shown (next, then
   * previous: style.json playback.render_ahead of them) between frames, one
   * per task, each into a composer and a picture of its own, so a jump to one
   * (`w.epoch = k`, the slider, a step) shows a finished picture instead of
   * composing it (at 200,000 points ~20 ms, at 1,000,000 ~100 ms). Stops when
   * anything the picture depends on changes; the next frame at rest starts again.
   */
  _renderAhead(view, layerKey) {
    const count = STYLE.playback.render_ahead;
    if (!count || layerKey == null || this._aheadFor === layerKey) return;
    this._aheadFor = layerKey;
    if (!this._ahead) {
      this._ahead = new Map();
      this._spare = [];
    }
    const nums = this.store.numbers(), cur = nums.indexOf(this.playback.current);
    const want = [];
    for (let d = 1; want.length < count && (cur + d < nums.length || cur - d >= 0); d++) {
      if (cur + d < nums.length) want.push(nums[cur + d]);
      if (cur - d >= 0 && want.length < count) want.push(nums[cur - d]);
    }
    for (const [num, entry] of [...this._ahead]) {
      if (!want.includes(num)) {
        this._ahead.delete(num);
        this._spare.push(entry.composer);
      }
    }
    this._spare.length = Math.min(this._spare.length, 1); // composers hold ~18 bytes a point
    const fill = this._mapFill();
    const next = () => this.guard(() => {
      if (this._aheadFor !== layerKey || this.playback.transition || this.playback.playing) return;
      const num = want.find((x) => {
        const e = this.store.get(x);
        return e && e.bitmap && !this._renderOneAhead(e, view, fill, true);
      });
      if (num == null) return;
      this._renderOneAhead(this.store.get(num), view, fill);
      setTimeout(next, 0);
    });
    // only once the picture has stayed the same a while: during a drag (a frame at rest per
    // pointer move) a 1,000,000-point render between moves would hold up the next one
    setTimeout(next, RENDER_AHEAD_AFTER_MS);
  }

  /**
   * Render epoch `e` ahead under `view` into its entry. `check`: only say whether its
   * entry is still what a frame now would draw (the composer's colours and order are
   * brought up to date either way; they are cached, so that is cheap when nothing changed).
   */
  _renderOneAhead(e, view, fill, check = false) {
    const old = this._ahead.get(e.epoch);
    if (check && !old) return false;
    const comp = old ? old.composer : this._spare.pop() || new FrameComposer(this.data.n);
    const k = this.store.indexOf(e.epoch);
    const previous = k > 0 ? this.store.epochs[k - 1].predictions : null;
    const W = this.renderer.width, H = this.renderer.height;
    const nVisible = comp.countVisible(e, this.data, this.opts, previous);
    const ps = pointStyle(nVisible, W, H, this.zoom(), this.opts.pointSize, this.opts.pointOpacity);
    comp.order(e, this.data, this.opts, previous, this._selState(), ps);
    const layerKey = this._layerKeyOf(e.epoch, view, comp.drawn(), fill);
    if (check) return old.layerKey === layerKey && old.bitmap === e.bitmap;
    comp.place(e, e, 1, view, W, H);
    this.renderer.setRadius(ps.radius);
    const words = this.renderer.renderAhead(view, e, fill, comp.xs, comp.ys, comp.passes, old ? old.words : null);
    this.renderer.setRadius(this.pointStyle.radius);
    this._ahead.set(e.epoch, { composer: comp, words, bitmap: e.bitmap, layerKey });
    return true;
  }

  /**
   * At rest, paint the other epochs' maps under this view between frames, one
   * per task, so a later jump (`w.epoch = k`, the slider) copies a painted map.
   * Stops when the view or size changes (the next frame at rest starts again).
   */
  _paintAhead(view) {
    const fill = this._mapFill();
    const key = [view.cx, view.cy, view.k, this.renderer.width, this.renderer.height, fill].join("|");
    if (this._aheadKey === key) return;
    this._aheadKey = key;
    // the epochs nearest the one shown, as many as the cache keeps besides it
    const cur = this.store.indexOf(this.playback.current);
    const near = this.store.epochs.map((e, i) => [Math.abs(i - cur), e]).sort((a, b) => a[0] - b[0])
      .slice(0, this.renderer.mapCapacity()).map(([, e]) => e);
    const next = () => this.guard(() => {
      if (this._aheadKey !== key || this.playback.transition) return;
      const e = near.find((x) => x.bitmap && !this.renderer.hasMap(view, x, fill));
      if (!e) return;
      this.renderer.prepare(view, e, fill);
      setTimeout(next, 0);
    });
    setTimeout(next, 0);
  }

  _drawOverlay(view, W, H) {
    const o = this.opts, c = this.composer, d = this.data;
    const withTrails = o.trails && this.selected.size > 0 && this.store.epochs.length > 1;
    let trails = null;
    if (withTrails) trails = trailPoints(this.selected, d.localOf, c.visible);
    this._showTrailNote(trails);
    const empty = !withTrails && this.inspected == null && this.hover == null && !this.lasso && !this.analysis.hasOverlay();
    this.renderer.drawOverlay((ctx) => {
      if (trails) {
        const rgbOf = o.colorBy === "label" ? (i) => d.classRGB[d.labels[i]] : (i) => {
          const w = c.colors[i];
          return [w & 255, (w >>> 8) & 255, (w >>> 16) & 255];
        };
        drawTrails(ctx, { epochs: this.store.epochs, chosen: trails.chosen, view, width: W, height: H, colorOf: rgbOf });
      }
      if (this.inspected != null) ring(ctx, c.xs[this.inspected], c.ys[this.inspected], this._cssVar("--dvi-accent", "#1976d2"), 9);
      if (this.hover != null) ring(ctx, c.xs[this.hover], c.ys[this.hover], this._cssVar("--dvi-fg", "#222"), 7);
      drawLasso(ctx, this.lasso);
      this.analysis.drawOverlay(ctx, (x, y) => toScreen(view, W, H, x, y));
    }, empty);
  }

  /** A visible note when trails show a sample of the selection; data-trails holds how many are drawn. */
  _showTrailNote(trails) {
    const note = this.els.noteEl;
    const drawn = trails ? trails.chosen.length : 0;
    this.stats.trails = trails ? { drawn, total: trails.total } : null;
    this.root.dataset.trails = String(drawn);
    const text = trails && drawn < trails.total
      ? `trails: ${drawn.toLocaleString("en")} of ${trails.total.toLocaleString("en")} selected samples (an evenly spaced sample)`
      : "";
    if (note.textContent !== text) note.textContent = text;
    note.hidden = !text;
  }

  dispose() {
    this.playback.pause();
    this.sync.dispose();
    this.analysis.dispose();
    for (const d of this.disposers) d();
  }
}
