/**
 * The one debug handle: `root.dvi` on the widget's root element
 * (`document.querySelector('.dvi-root').dvi`). Read by the browser tests, the
 * widget benchmark and a person at the console; nothing in the widget reads
 * it. Read-only views of the state plus a few actions a user could also do
 * with the mouse or keyboard. PROTOCOL.md ("Debug handle") lists it.
 */
export class DebugHandle {
  constructor(app) {
    Object.defineProperty(this, "app", { value: app, enumerable: false });
  }

  // -- state (read only)
  get n() { return this.app.data.n; }
  get labels() { return this.app.data.labels; }
  get xs() { return this.app.composer.xs; } // screen x (CSS px, map-relative) per displayed point
  get ys() { return this.app.composer.ys; }
  get visible() { return this.app.composer.visible; } // 1 = passes the filters
  get passes() { return this.app.composer.passes; } // draw passes: [unselected, selected]
  get orderKey() { return this.app.composer.orderKey; }
  get selected() { return this.app.selected; } // Set of global indices
  get view() { return this.app.view(); } // {cx, cy, k}
  get viewRel() { return this.app.viewRel; } // null (fitted) or {cx, cy, zoom}
  get state() { return { ...this.app.opts, mode: this.app.mode, speed: this.app.playback.speed }; }
  get current() { return this.app.playback.current; }
  get transition() { return this.app.playback.transition; } // {from, to (epoch numbers), start, duration} or null
  /** Hold a glide (the benchmark times frames in the middle of one); from/to: epoch numbers or decoded epochs. */
  set transition(tr) {
    const pb = this.app.playback;
    if (!tr) {
      pb.transition = null;
      return;
    }
    const num = (e) => (e && typeof e === "object" ? e.epoch : e);
    pb.current = num(tr.from);
    pb.transition = { from: num(tr.from), to: num(tr.to), start: tr.start, duration: tr.duration };
  }
  get playing() { return this.app.playback.playing; }
  get pointStyle() { return this.app.pointStyle; } // {radius, alpha, outline}
  get store() { return this.app.store; }
  get renderer() { return this.app.renderer; }
  get frameTimes() { return this.app.stats.frameTimes; }
  /** The last frame's ms per phase; `kept`: the map and points stayed as they were (only the
   * overlay changed); `ahead`: the frame showed a picture rendered ahead (app.js _renderAhead). */
  get lastBreakdown() { return this.app.stats.lastBreakdown; }
  get lastComposed() { return this.app.stats.lastComposed; } // the breakdown of the last frame that was not `kept`
  get lastLasso() { return this.app.stats.lastLasso; } // the last lasso polygon, as drawn
  get lastHitTestMs() { return this.app.stats.lastHitTestMs; }
  get drawnAt() { return this.app.stats.drawnAt; }
  get epochChangeAt() { return this.app.stats.epochChangeAt; } // Date.now() when the model's epoch last changed
  /** The first frame at rest of the epoch shown: {epoch, at (Date.now()), frameMs, ahead, changeAt}. */
  get epochDrawn() { return this.app.stats.epochDrawn; }
  get trails() { return this.app.stats.trails; } // {drawn, total} or null
  get inspected() { return this.app.inspected; } // display position in the inspector, or null
  get analysis() { return this.app.analysis; } // analysis.js: dyn, carto, probeState, nbState, cartoLayout()
  colorOf(i) { const w = this.app.composer.colors[i]; return [w & 255, (w >>> 8) & 255, (w >>> 16) & 255, w >>> 24]; }
  visibleCount() { let c = 0; for (const v of this.app.composer.visible) c += v; return c; }
  selectedOnMap() { const p = this.app.composer.passes; return p.length > 1 ? p[1].order.length : 0; } // the drawn selected pass
  screenOf(i) { return [this.app.composer.xs[i], this.app.composer.ys[i]]; } // map-relative CSS px
  toData(sx, sy) { const v = this.app.view(); return [(sx - this.app.renderer.width / 2) / v.k + v.cx, v.cy - (sy - this.app.renderer.height / 2) / v.k]; }
  globalIndex(i) { return this.app.data.globalIndex(i); }

  // -- actions
  transform() { return { ...this.app.view(), width: this.app.renderer.width, height: this.app.renderer.height }; }
  frame() { return this.app.frame(); }
  invalidate(full = false) { return this.app.invalidate(full); }
  /** Compose the map and points again from the data, even when nothing changed (tests compare the pictures). */
  redraw() { this.app._layerKey = null; return this.app.invalidate(true); }
  play() { return this.app.playback.play(performance.now()); }
  pause() { return this.app.playback.pause(); }
  jumpTo(epoch) { const ok = this.app.playback.jumpTo(epoch); this.app.invalidate(true); return ok; }
  setMode(mode) { return this.app.setMode(mode); }
  resetView() { return this.app.resetView(); }
  inspect(i) { return this.app.inspect(i); }
  setSelection(globals) { return this.app.setSelection(new Set(globals)); }
  finishLasso(poly, mode = "replace") { return this.app.finishLasso(poly, mode); }
}
