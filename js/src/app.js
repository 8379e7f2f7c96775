/**
 * The widget's application: builds the DOM, keeps the state (epoch, playback,
 * view, filters, selection), mirrors it with the widget model, and schedules
 * frames. The model is used only through get / set / on / save_changes and the
 * host's child-model lookup, so the offline export can drive the same code.
 */
import { h, setChildren } from "./dom.js";
import { asBytes, asTyped, decodeClasses, decodeIndices, encodeIndices } from "./decode.js";
import { parseHex, pointColors, pack, shade } from "./colors.js";
import { lerpPositions, transitionProgress } from "./interp.js";
import { fitView, projectAll, zoomAt, panBy, toScreen } from "./view.js";
import { visibilityMask, classCounts } from "./filters.js";
import { pointsInPolygon, combineSelection } from "./lasso.js";
import { EpochStore } from "./store.js";
import { MapRenderer } from "./renderer.js";
import { ThumbAtlas } from "./thumbs.js";
import { renderLegend, renderMetrics, renderTooltip, renderInspector } from "./panels.js";

const SPEEDS = [0.5, 1, 2, 4]; // epochs per second during playback
const STEP_MS = 280; // glide length for a single step (arrow keys)
const HOVER_RADIUS = 8; // CSS px

export class DVIApp {
  constructor({ model, el, host, onError }) {
    this.model = model;
    this.host = host;
    this.onError = onError;
    this.disposers = [];
    this._readStatic();
    this._buildDom(el);
    this.renderer = new MapRenderer(this.mapEl);
    this.renderer.setPointCount(this.n);
    this.state = {
      colorBy: model.get("color_by") || "label",
      split: model.get("split_filter") || "both",
      hidden: new Set(model.get("hidden_classes") || []),
      onlyMisclassified: !!model.get("only_misclassified"),
      onlyFlipped: !!model.get("only_flipped"),
      trails: !!model.get("show_trails"),
      mode: "pan",
      speed: 1,
    };
    this.current = null; // epoch number shown
    this.transition = null; // {from, to, start, duration}
    this.playing = false;
    this.pendingEpoch = model.get("epoch");
    this.view = null;
    this.viewAuto = true;
    this._firstView = true; // a saved view (load_state) applies once the canvas has a size
    this.hover = null;
    this.inspected = null;
    this.lasso = null;
    this.frameTimes = [];
    this.frameRequested = false;
    this._setSelectedFromModel();
    this.store = new EpochStore(model, host, this.n, this.classes.length, (e) => this._onEpochLoaded(e), onError);
    this._bindModel();
    this._bindInput();
    this._syncControls();
    this._resizeObserver = new ResizeObserver(() => this.invalidate(true));
    this._resizeObserver.observe(this.mapEl);
    this.invalidate(true);
    this.root.dvi = this; // for tests and benchmarks: transform, frame times
  }

  // ---------- static data (labels, split, thumbnails) ----------

  _readStatic() {
    const meta = this.model.get("meta") || {};
    this.meta = meta;
    this.classes = meta.classes || [];
    this.classRGB = (meta.colors || []).map(parseHex);
    this.nSamples = meta.n_samples || 0;
    this.labels = decodeClasses(this.model.get("labels"), this.classes.length);
    this.n = this.labels.length;
    const split = asBytes(this.model.get("split"));
    this.isTest = split.length === this.n ? split : new Uint8Array(this.n);
    const idx = asTyped(this.model.get("indices"), Uint32Array);
    this.indices = idx.length === this.n ? idx : null; // null: display position == global index
    this.localOf = new Int32Array(Math.max(this.nSamples, this.n)).fill(-1);
    for (let i = 0; i < this.n; i++) this.localOf[this.globalIndex(i)] = i;
    this.thumbs = new ThumbAtlas(asBytes(this.model.get("thumbnails")), meta.thumbnail_shape, this.n);
    this.xs = new Float32Array(this.n);
    this.ys = new Float32Array(this.n);
    this.pos = new Float32Array(2 * this.n);
    this.selMask = new Uint8Array(this.n);
    this.visible = new Uint8Array(this.n);
  }

  globalIndex(i) {
    return this.indices ? this.indices[i] : i;
  }

  // ---------- DOM ----------

  _buildDom(el) {
    const opt = (v, text) => h("option", { value: v, text });
    this.playBtn = h("button", { class: "dvi-btn dvi-play", type: "button", title: "play / pause (space)", text: "▶" });
    this.slider = h("input", { class: "dvi-slider", type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "epoch" });
    this.epochLabel = h("span", { class: "dvi-epoch-label", text: "epoch —" });
    this.sliderMin = h("span", { class: "dvi-slider-end" });
    this.sliderMax = h("span", { class: "dvi-slider-end" });
    this.speedSel = h("select", { class: "dvi-speed", title: "playback speed (epochs per second)" }, SPEEDS.map((s) => opt(s, `${s}×`)));
    this.colorSel = h("select", { class: "dvi-color-by", title: "colour points by" }, opt("label", "colour: label"), opt("prediction", "colour: prediction"), opt("correct", "colour: correct?"));
    this.splitSel = h("select", { class: "dvi-split", title: "train / test samples" }, opt("both", "train + test"), opt("train", "train"), opt("test", "test"));
    const check = (cls, text, title) => {
      const box = h("input", { type: "checkbox", class: cls });
      return [box, h("label", { class: "dvi-check", title }, box, text)];
    };
    const [misBox, misLabel] = check("dvi-only-mis", "misclassified", "show only misclassified samples");
    const [flipBox, flipLabel] = check("dvi-only-flip", "flipped", "show only samples whose prediction changed at this epoch");
    const [trailBox, trailLabel] = check("dvi-trails", "trails", "draw the selected samples' paths over all epochs");
    Object.assign(this, { misBox, flipBox, trailBox });
    this.panBtn = h("button", { class: "dvi-btn dvi-mode-pan", type: "button", title: "drag to pan", text: "✥ pan" });
    this.lassoBtn = h("button", { class: "dvi-btn dvi-mode-lasso", type: "button", title: "drag to select; shift adds, alt removes", text: "◌ lasso" });
    this.clearBtn = h("button", { class: "dvi-btn dvi-clear", type: "button", title: "clear the selection", text: "clear" });
    this.resetBtn = h("button", { class: "dvi-btn dvi-reset", type: "button", title: "reset the view", text: "reset" });
    this.selCount = h("span", { class: "dvi-sel-count" });
    this.mapEl = h("div", { class: "dvi-map" });
    this.messageEl = h("div", { class: "dvi-message", hidden: true });
    this.tooltip = h("div", { class: "dvi-tooltip", hidden: true });
    this.legendEl = h("div", { class: "dvi-panel dvi-legend" });
    this.metricsEl = h("div", { class: "dvi-panel dvi-faith" });
    this.inspectorEl = h("div", { class: "dvi-panel dvi-inspector", hidden: true });
    this.root = h(
      "div",
      { class: "dvi-root", tabindex: 0, "aria-label": "DeepVisualInsight training map" },
      h(
        "div",
        { class: "dvi-toolbar" },
        h("div", { class: "dvi-group dvi-time" }, this.playBtn, this.sliderMin, this.slider, this.sliderMax, this.epochLabel, this.speedSel),
        h("div", { class: "dvi-group" }, this.colorSel, this.splitSel, misLabel, flipLabel, trailLabel),
        h("div", { class: "dvi-group" }, this.panBtn, this.lassoBtn, this.clearBtn, this.resetBtn, this.selCount),
      ),
      h(
        "div",
        { class: "dvi-body" },
        h("div", { class: "dvi-map-wrap" }, this.mapEl),
        h("div", { class: "dvi-side" }, this.legendEl, this.metricsEl, this.inspectorEl),
      ),
    );
    this.mapEl.append(this.messageEl, this.tooltip);
    el.append(this.root);
  }

  _syncControls() {
    const s = this.state;
    this.colorSel.value = s.colorBy;
    this.splitSel.value = s.split;
    this.misBox.checked = s.onlyMisclassified;
    this.flipBox.checked = s.onlyFlipped;
    this.trailBox.checked = s.trails;
    this.speedSel.value = String(s.speed);
    this.panBtn.classList.toggle("dvi-active", s.mode === "pan");
    this.lassoBtn.classList.toggle("dvi-active", s.mode === "lasso");
    this.mapEl.dataset.mode = s.mode;
    this.playBtn.textContent = this.playing ? "❚❚" : "▶";
    this.playBtn.setAttribute("aria-pressed", String(this.playing));
    const nums = this.store ? this.store.numbers() : [];
    this.slider.max = String(Math.max(0, nums.length - 1));
    this.slider.disabled = nums.length < 2;
    const idx = this.store && this.current != null ? this.store.indexOf(this.current) : -1;
    if (idx >= 0) this.slider.value = String(idx);
    this.sliderMin.textContent = nums.length ? String(nums[0]) : "";
    this.sliderMax.textContent = nums.length ? String(nums[nums.length - 1]) : "";
    this.epochLabel.textContent = this.current == null ? "epoch —" : `epoch ${this.current}`;
    this.root.dataset.epoch = this.current == null ? "" : String(this.current);
    this.root.dataset.playing = String(this.playing);
    this.selCount.textContent = this.selected.size ? `${this.selected.size} selected` : "";
    this._renderLegend();
    renderMetrics(this.metricsEl, this.current, this.currentEpoch() ? this.currentEpoch().metrics : null);
  }

  _renderLegend() {
    const key = `${this.state.split}|${this.state.colorBy}|${[...this.state.hidden].join(",")}`;
    if (key === this._legendKey) return; // counts depend on the split filter only
    this._legendKey = key;
    const counts = classCounts(this.labels, this.isTest, this.state.split, this.classes.length);
    renderLegend(this.legendEl, {
      classes: this.classes,
      classRGB: this.classRGB,
      counts,
      hidden: this.state.hidden,
      colorBy: this.state.colorBy,
      onToggle: (c) => {
        const hidden = new Set(this.state.hidden);
        hidden.has(c) ? hidden.delete(c) : hidden.add(c);
        this._setOption("hidden", hidden, "hidden_classes", [...hidden].sort((a, b) => a - b));
      },
    });
  }

  // ---------- model <-> state ----------

  _bindModel() {
    const on = (name, fn) => this.model.on(`change:${name}`, () => this._guard(fn));
    on("epoch_data", () => this.store.sync());
    on("epoch", () => {
      const e = this.model.get("epoch");
      if (e == null || e === this.current || (this.transition && this.transition.to.epoch === e)) return;
      this.pause();
      this.jumpTo(e);
    });
    on("selected", () => {
      this._setSelectedFromModel();
      this.invalidate();
    });
    on("color_by", () => this._fromModel("colorBy", this.model.get("color_by")));
    on("split_filter", () => this._fromModel("split", this.model.get("split_filter")));
    on("hidden_classes", () => this._fromModel("hidden", new Set(this.model.get("hidden_classes") || [])));
    on("only_misclassified", () => this._fromModel("onlyMisclassified", !!this.model.get("only_misclassified")));
    on("only_flipped", () => this._fromModel("onlyFlipped", !!this.model.get("only_flipped")));
    on("show_trails", () => this._fromModel("trails", !!this.model.get("show_trails")));
    on("view", () => this._viewFromModel());
    on("meta", () => {
      this.meta = this.model.get("meta") || {};
      if (this.viewAuto) this.view = null;
      this.invalidate();
    });
  }

  _fromModel(key, value) {
    this.state[key] = value;
    this._syncControls();
    this.invalidate();
  }

  /** Change a UI option and mirror it to its trait. */
  _setOption(key, value, trait, traitValue = value) {
    this.state[key] = value;
    this.model.set(trait, traitValue);
    this.model.save_changes();
    this._syncControls();
    this.invalidate();
  }

  _setSelectedFromModel() {
    const sel = decodeIndices(this.model.get("selected"));
    this.selected = new Set(sel);
    this.selMask.fill(0);
    for (const g of sel) {
      const i = g < this.localOf.length ? this.localOf[g] : -1;
      if (i >= 0) this.selMask[i] = 1;
    }
    if (this.selCount) this.selCount.textContent = this.selected.size ? `${this.selected.size} selected` : "";
  }

  setSelection(globalSet) {
    this.model.set("selected", encodeIndices(globalSet));
    this.model.save_changes();
    this._setSelectedFromModel();
    this.invalidate();
  }

  _viewFromModel() {
    const v = this.model.get("view") || {};
    if (v.cx == null || !this.renderer.width) {
      this.viewAuto = true;
      this.view = null;
    } else {
      const fit = this._fitView();
      this.view = { cx: v.cx, cy: v.cy, k: fit.k * (v.zoom || 1) };
      this.viewAuto = false;
    }
    this.invalidate();
  }

  _saveView() {
    clearTimeout(this._viewTimer);
    this._viewTimer = setTimeout(() => {
      const fit = this._fitView();
      const v = this.viewAuto ? {} : { cx: this.view.cx, cy: this.view.cy, zoom: this.view.k / fit.k };
      this.model.set("view", v);
      this.model.save_changes();
    }, 250);
  }

  // ---------- epochs and playback ----------

  currentEpoch() {
    return this.current == null ? null : this.store.get(this.current);
  }

  _onEpochLoaded(e) {
    this._decodeBackground(e);
    if (e.epoch === this.pendingEpoch) {
      this.pendingEpoch = null;
      this.pause();
      this.jumpTo(e.epoch);
    }
    if (this.inspected != null) this._renderInspector();
    this._syncControls();
    this.invalidate();
  }

  _decodeBackground(e) {
    if (!e.background || !e.background.length || typeof createImageBitmap !== "function") return;
    createImageBitmap(new Blob([e.background], { type: "image/png" }))
      .then((bmp) => {
        e.bitmap = bmp;
        this.invalidate(true);
      })
      .catch((err) => this.onError(err));
  }

  /** Show epoch `num` at once (slider, Python, load). */
  jumpTo(num) {
    if (!this.store.get(num)) {
      this.pendingEpoch = num;
      return;
    }
    this.transition = null;
    this.current = num;
    this.pendingEpoch = null;
    this._afterEpochChange();
  }

  /** Glide to epoch `num` over `duration` ms. */
  glideTo(num, duration) {
    const from = this.currentEpoch(), to = this.store.get(num);
    if (!to) return;
    if (!from || from === to) return this.jumpTo(num);
    this.transition = { from, to, start: performance.now(), duration };
    // paint the next map between frames, not in the frame that switches to it
    setTimeout(() => this._guard(() => this.renderer.prepare(this.view, to, this._mapFill || "#fafafa")), 0);
    this.invalidate(true);
  }

  step(delta) {
    const nums = this.store.numbers();
    const target = this.transition ? this.transition.to.epoch : this.current;
    const k = nums.indexOf(target) + delta;
    if (k < 0 || k >= nums.length) return;
    this.glideTo(nums[k], STEP_MS);
  }

  play() {
    const nums = this.store.numbers();
    if (nums.length < 2) return;
    if (this.current === nums[nums.length - 1]) this.jumpTo(nums[0]);
    this.playing = true;
    this._syncControls();
    this._nextPlayStep();
  }

  pause() {
    this.playing = false;
    this._syncControls();
  }

  _nextPlayStep() {
    const nums = this.store.numbers();
    const k = nums.indexOf(this.current);
    if (!this.playing) return;
    if (k < 0 || k + 1 >= nums.length) return this.pause();
    this.glideTo(nums[k + 1], 1000 / this.state.speed);
  }

  _afterEpochChange() {
    if (this.model.get("epoch") !== this.current) {
      this.model.set("epoch", this.current);
      this.model.save_changes();
    }
    this._orderKey = null;
    this._syncControls();
    if (this.inspected != null) this._renderInspector();
    this.invalidate(true);
  }

  // ---------- input ----------

  _bindInput() {
    const listen = (target, type, fn, opts) => {
      const g = (ev) => this._guard(() => fn(ev));
      target.addEventListener(type, g, opts);
      this.disposers.push(() => target.removeEventListener(type, g, opts));
    };
    listen(this.playBtn, "click", () => (this.playing ? this.pause() : this.play()));
    listen(this.slider, "input", () => {
      this.pause();
      const nums = this.store.numbers();
      this.jumpTo(nums[Number(this.slider.value)]);
    });
    listen(this.speedSel, "change", () => {
      this.state.speed = Number(this.speedSel.value);
    });
    listen(this.colorSel, "change", () => this._setOption("colorBy", this.colorSel.value, "color_by"));
    listen(this.splitSel, "change", () => this._setOption("split", this.splitSel.value, "split_filter"));
    listen(this.misBox, "change", () => this._setOption("onlyMisclassified", this.misBox.checked, "only_misclassified"));
    listen(this.flipBox, "change", () => this._setOption("onlyFlipped", this.flipBox.checked, "only_flipped"));
    listen(this.trailBox, "change", () => this._setOption("trails", this.trailBox.checked, "show_trails"));
    listen(this.panBtn, "click", () => this._setMode("pan"));
    listen(this.lassoBtn, "click", () => this._setMode("lasso"));
    listen(this.clearBtn, "click", () => this.setSelection(new Set()));
    listen(this.resetBtn, "click", () => this.resetView());
    // Keys: handled for the focusable root and stopped there, so the notebook's
    // shortcuts never see them. The listener sits on window in the capture phase
    // because some front ends (Notebook 7) take keydown on document while
    // capturing, before any element below could stop it. Default actions (the
    // slider's own arrows, select menus) still happen.
    // Chords with Ctrl/Cmd (save, copy) and Shift+Enter (run the cell) still reach the notebook.
    const mine = (ev) =>
      ev.target instanceof Node && this.root.contains(ev.target) &&
      !(ev.ctrlKey || ev.metaKey || (ev.key === "Enter" && ev.shiftKey));
    listen(window, "keydown", (ev) => mine(ev) && this._onKey(ev), true);
    listen(window, "keyup", (ev) => mine(ev) && ev.stopPropagation(), true);
    listen(window, "keypress", (ev) => mine(ev) && ev.stopPropagation(), true);
    // Wheel zooms the map and never scrolls the notebook.
    listen(this.mapEl, "wheel", (ev) => this._onWheel(ev), { passive: false });
    listen(this.mapEl, "pointerdown", (ev) => this._onPointerDown(ev));
    listen(this.mapEl, "pointermove", (ev) => this._onPointerMove(ev));
    listen(this.mapEl, "pointerup", (ev) => this._onPointerUp(ev));
    listen(this.mapEl, "pointerleave", () => this._setHover(null));
  }

  _setMode(mode) {
    this.state.mode = mode;
    this._syncControls();
  }

  _onKey(ev) {
    ev.stopPropagation();
    const t = ev.target;
    const inControl = t && t !== this.root && /^(INPUT|SELECT|BUTTON)$/.test(t.tagName) && t !== this.slider;
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      if (t === this.slider) return; // the slider moves itself
      ev.preventDefault();
      this.pause();
      this.step(ev.key === "ArrowRight" ? 1 : -1);
    } else if (ev.key === " " || ev.code === "Space") {
      if (inControl && t.tagName !== "INPUT") return;
      ev.preventDefault();
      this.playing ? this.pause() : this.play();
    } else if (ev.key === "Escape") {
      this.lasso = null;
      this._inspect(null);
      this.invalidate();
    }
  }

  _local(ev) {
    const r = this.mapEl.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  _onWheel(ev) {
    ev.preventDefault();
    ev.stopPropagation();
    if (!this.view) return;
    const [sx, sy] = this._local(ev);
    const factor = Math.exp(-ev.deltaY * (ev.deltaMode === 1 ? 0.05 : 0.0015));
    this.view = zoomAt(this.view, this.renderer.width, this.renderer.height, sx, sy, factor);
    this.viewAuto = false;
    this._saveView();
    this.invalidate(true);
  }

  _onPointerDown(ev) {
    if (ev.button !== 0) return;
    this.root.focus({ preventScroll: true });
    const [sx, sy] = this._local(ev);
    this.mapEl.setPointerCapture(ev.pointerId);
    const lasso = this.state.mode === "lasso" || ev.shiftKey || ev.altKey;
    this.drag = { sx, sy, lastX: sx, lastY: sy, moved: false, lasso };
    if (lasso) this.lasso = [sx, sy];
    this._setHover(null);
  }

  _onPointerMove(ev) {
    const [sx, sy] = this._local(ev);
    const d = this.drag;
    if (!d) {
      this._setHover(this.nearest(sx, sy));
      return;
    }
    if (Math.hypot(sx - d.sx, sy - d.sy) > 3) d.moved = true;
    if (d.lasso) {
      this.lasso.push(sx, sy);
      this.invalidate();
    } else if (d.moved && this.view) {
      this.view = panBy(this.view, sx - d.lastX, sy - d.lastY);
      this.viewAuto = false;
      this.invalidate(true);
    }
    d.lastX = sx;
    d.lastY = sy;
  }

  _onPointerUp(ev) {
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    const [sx, sy] = this._local(ev);
    if (!d.moved) {
      this.lasso = null;
      this._inspect(this.nearest(sx, sy));
    } else if (d.lasso) {
      const mode = ev.shiftKey ? "add" : ev.altKey ? "subtract" : "replace";
      this.finishLasso(this.lasso, mode);
    } else {
      this._saveView();
    }
    this.invalidate();
  }

  /** Select the visible points inside a screen-space polygon (flat [x0, y0, ...]). */
  finishLasso(poly, mode = "replace") {
    this.lasso = null;
    this.lastLasso = Array.from(poly); // the polygon as the pointer drew it (tests compare against it)
    const t0 = performance.now();
    const vis = this.visible;
    const hits = pointsInPolygon(this.xs, this.ys, poly, (i) => vis[i] === 1);
    this.lastHitTestMs = performance.now() - t0;
    const globals = Array.from(hits, (i) => this.globalIndex(i));
    this.setSelection(combineSelection(this.selected, globals, mode));
    return hits;
  }

  /** Display position of the visible point nearest to (sx, sy) within the hover radius. */
  nearest(sx, sy) {
    let best = -1, bestD = HOVER_RADIUS * HOVER_RADIUS;
    const { xs, ys, visible } = this;
    for (let i = 0; i < this.n; i++) {
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

  _setHover(i) {
    if (i === this.hover) return;
    this.hover = i;
    if (i == null) {
      this.tooltip.hidden = true;
    } else {
      renderTooltip(this.tooltip, this, i);
      this.tooltip.hidden = false;
      const W = this.renderer.width, H = this.renderer.height;
      const x = this.xs[i], y = this.ys[i];
      this.tooltip.style.left = x < W * 0.6 ? `${x + 12}px` : "";
      this.tooltip.style.right = x < W * 0.6 ? "" : `${W - x + 12}px`;
      this.tooltip.style.top = y < H * 0.6 ? `${y + 12}px` : "";
      this.tooltip.style.bottom = y < H * 0.6 ? "" : `${H - y + 12}px`;
      this.tooltip.dataset.index = String(this.globalIndex(i));
    }
    this.invalidate();
  }

  _inspect(i) {
    this.inspected = i;
    this._renderInspector();
    this.invalidate();
  }

  _renderInspector() {
    renderInspector(this.inspectorEl, this, this.inspected, () => this._inspect(null));
  }

  resetView() {
    clearTimeout(this._viewTimer);
    this.viewAuto = true;
    this.view = null;
    this.model.set("view", {});
    this.model.save_changes();
    this.invalidate(true);
  }

  _fitView() {
    const ext = this.meta.extent || [-1, 1, -1, 1];
    return fitView(ext, this.renderer.width || 1, this.renderer.height || 1);
  }

  /** The current data -> screen transform (CSS px relative to the map's top-left). */
  transform() {
    return { ...this.view, width: this.renderer.width, height: this.renderer.height };
  }

  // ---------- frames ----------

  invalidate(full = false) {
    if (full) this._bgDirty = true;
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this._guard(() => this.frame());
    });
  }

  _guard(fn) {
    try {
      return fn();
    } catch (err) {
      this.onError(err);
    }
  }

  frame() {
    if (!this.root.isConnected) return;
    const t0 = performance.now();
    const resized = this.renderer.resize();
    if (resized) this._bgDirty = true;
    if (!this.view) {
      const saved = this.model.get("view");
      if (this._firstView && this.renderer.width > 1 && saved && saved.cx != null) this._viewFromModel();
      this._firstView = false;
      if (!this.view) this.view = this._fitView();
    }
    const nums = this.store.numbers();
    if (nums.length === 0) {
      this.messageEl.hidden = false;
      this.messageEl.textContent = this.meta.live ? "waiting for the first epoch…" : "no epochs";
      return;
    }
    this.messageEl.hidden = true;
    if (this.current == null) {
      if (this.pendingEpoch != null && !this.store.get(this.pendingEpoch)) return; // still loading
      this.jumpTo(this.pendingEpoch != null ? this.pendingEpoch : nums[nums.length - 1]);
    }

    // positions: at rest or gliding
    let target = this.currentEpoch(), t = 1, done = true;
    if (this.transition) {
      ({ t, done } = transitionProgress(performance.now() - this.transition.start, this.transition.duration));
      target = this.transition.to;
      lerpPositions(this.transition.from.positions, target.positions, t, this.pos);
    } else {
      this.pos.set(target.positions);
    }
    const W = this.renderer.width, H = this.renderer.height;
    projectAll(this.view, W, H, this.pos, this.xs, this.ys);
    this._updateOrder(target);
    const t1 = performance.now();

    // The map switches half-way through a glide (a cross-fade would repaint it every frame).
    const shown = this.transition && t < 0.5 ? this.transition.from : target;
    if (this._bgDirty || shown !== this._bgShown || shown.bitmap !== this._bgBitmap) {
      this._mapFill = this._cssVar("--dvi-map-bg", "#fafafa");
      this.renderer.drawBackground(this.view, shown, this._mapFill);
      this._bgDirty = false;
      this._bgShown = shown;
      this._bgBitmap = shown.bitmap;
    }
    const t2 = performance.now();
    this.renderer.drawPoints(this.xs, this.ys, this._passes);
    const t3 = performance.now();
    this._drawOverlay(target);

    const t4 = performance.now();
    const dt = t4 - t0;
    // where the frame's time went (benchmarks/widget.py reports it)
    this.lastBreakdown = { positions: t1 - t0, background: t2 - t1, points: t3 - t2, overlay: t4 - t3 };
    this.frameTimes.push(dt);
    if (this.frameTimes.length > 2000) this.frameTimes.splice(0, 1000);
    if (this.transition && done) {
      this.transition = null;
      this.current = target.epoch;
      this._afterEpochChange();
      if (this.playing) this._nextPlayStep();
    } else if (this.transition) {
      this.invalidate();
    }
    if (!this.transition) {
      this.root.dataset.drawnEpoch = String(this.current);
      this.drawnAt = Date.now();
    }
  }

  /** Colours, visibility and draw order; recomputed only when their inputs change. */
  _updateOrder(target) {
    const s = this.state;
    const key = [target.epoch, s.colorBy, s.split, [...s.hidden].join(","), s.onlyMisclassified, s.onlyFlipped, this.selected.size, this._selVersion()].join("|");
    if (key === this._orderKey) return;
    this._orderKey = key;
    const nums = this.store.numbers();
    const k = nums.indexOf(target.epoch);
    const previous = k > 0 ? this.store.get(nums[k - 1]).predictions : null;
    const pred = target.predictions;
    visibilityMask(
      { labels: this.labels, isTest: this.isTest, predictions: pred, previous },
      s,
      this.visible,
    );
    const colors = pointColors(s.colorBy, this.classRGB, this.labels, pred, this._colors);
    this._colors = colors;
    const anySel = this.selected.size > 0;
    const dim = anySel ? 70 : 255;
    // dimmed points: translucent, no outline; otherwise an opaque dark ring
    const outlineRGB = anySel ? pack(0, 0, 0, 0) : pack(45, 45, 45, 255);
    const selOutline = pack(0, 0, 0, 255);
    const rest = [], sel = [];
    for (let i = 0; i < this.n; i++) {
      if (!this.visible[i]) continue;
      (this.selMask[i] ? sel : rest).push(i);
    }
    if (!this._wrong || this._wrong.length !== this.n) this._wrong = new Uint8Array(this.n);
    const wrong = this._wrong;
    for (let i = 0; i < this.n; i++) wrong[i] = pred[i] !== this.labels[i] ? 1 : 0;
    this._passes = [
      { order: Uint32Array.from(rest), colors, alpha: dim, outline: outlineRGB, wrong, selected: false },
      { order: Uint32Array.from(sel), colors, alpha: 255, outline: selOutline, wrong, selected: true },
    ];
    this._syncControls();
  }

  _selVersion() {
    if (this._selRef !== this.selected) {
      this._selRef = this.selected;
      this._selCounter = (this._selCounter || 0) + 1;
    }
    return this._selCounter;
  }

  _drawOverlay(target) {
    const s = this.state;
    const empty = !(s.trails && this.selected.size) && this.inspected == null && this.hover == null && !this.lasso;
    this.renderer.drawOverlay((ctx) => {
      if (s.trails && this.selected.size) this._drawTrails(ctx);
      const ring = (i, color, r) => {
        if (i == null) return;
        ctx.beginPath();
        ctx.arc(this.xs[i], this.ys[i], r, 0, 2 * Math.PI);
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        ctx.stroke();
      };
      ring(this.inspected, this._cssVar("--dvi-accent", "#1976d2"), 9);
      ring(this.hover, this._cssVar("--dvi-fg", "#222"), 7);
      if (this.lasso && this.lasso.length >= 4) {
        ctx.beginPath();
        ctx.moveTo(this.lasso[0], this.lasso[1]);
        for (let k = 2; k < this.lasso.length; k += 2) ctx.lineTo(this.lasso[k], this.lasso[k + 1]);
        ctx.closePath();
        ctx.fillStyle = "rgba(25, 118, 210, 0.12)";
        ctx.fill();
        ctx.setLineDash([5, 4]);
        ctx.strokeStyle = "#1565c0";
        ctx.lineWidth = 1.5;
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }, empty);
  }

  /** Paths of the selected (visible) samples over all epochs, at most 2,000. */
  _drawTrails(ctx) {
    const epochs = this.store.epochs;
    if (epochs.length < 2) return;
    const W = this.renderer.width, H = this.renderer.height;
    let drawn = 0;
    ctx.lineWidth = 1.2;
    ctx.globalAlpha = 0.85;
    for (const g of this.selected) {
      const i = g < this.localOf.length ? this.localOf[g] : -1;
      if (i < 0 || !this.visible[i]) continue;
      if (++drawn > 2000) break;
      const [r, gg, b] = shade(this.classRGB[this.labels[i]], 0.75);
      ctx.strokeStyle = `rgb(${r},${gg},${b})`;
      ctx.beginPath();
      epochs.forEach((e, k) => {
        const [sx, sy] = toScreen(this.view, W, H, e.positions[2 * i], e.positions[2 * i + 1]);
        k === 0 ? ctx.moveTo(sx, sy) : ctx.lineTo(sx, sy);
      });
      ctx.stroke();
      const [sx, sy] = toScreen(this.view, W, H, epochs[0].positions[2 * i], epochs[0].positions[2 * i + 1]);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillRect(sx - 1.5, sy - 1.5, 3, 3); // where the trail starts
    }
    ctx.globalAlpha = 1;
    this.root.dataset.trails = String(drawn);
  }

  _cssVar(name, fallback) {
    const v = getComputedStyle(this.root).getPropertyValue(name).trim();
    return v || fallback;
  }

  dispose() {
    this.pause();
    this._resizeObserver.disconnect();
    for (const d of this.disposers) d();
  }
}
