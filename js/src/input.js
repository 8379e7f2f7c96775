/**
 * Input: keyboard, pointer, wheel and control events turned into calls on an
 * `actions` object. Knows the DOM elements but not the app.
 *
 * Keys are handled for the focusable root and stopped there, so the
 * notebook's shortcuts never see them. The listener sits on window in the
 * capture phase because some front ends (Notebook 7) take keydown on document
 * while capturing, before any element below could stop it. Inside a shadow
 * root (marimo's anywidget) a window listener sees the shadow host as the
 * event's target, so where an event comes from is read from its composed path.
 */

/** The element an event really started on, across shadow roots. */
export function originOf(ev) {
  const path = typeof ev.composedPath === "function" ? ev.composedPath() : null;
  return path && path.length ? path[0] : ev.target;
}

/** Whether `ev` started inside `root` (through shadow roots too). */
export function fromInside(ev, root) {
  const path = typeof ev.composedPath === "function" ? ev.composedPath() : null;
  if (path && path.length) return path.includes(root);
  const t = ev.target;
  return !!t && typeof root.contains === "function" && root.contains(t);
}

/** Key events the widget keeps: from inside it, except chords the notebook needs (Ctrl/Cmd, Shift+Enter). */
export function isWidgetKey(ev, root) {
  return fromInside(ev, root) && !(ev.ctrlKey || ev.metaKey || (ev.key === "Enter" && ev.shiftKey));
}

/**
 * What a key does, given where it started: "step+1", "step-1", "toggle", "escape",
 * or null (nothing: let the element have it). `slider`: the epoch slider element.
 */
export function keyAction(ev, origin, root, slider) {
  const tag = origin && origin.tagName;
  const inControl = origin && origin !== root && /^(INPUT|SELECT|BUTTON|TEXTAREA)$/.test(tag || "");
  // a text box (the search box) keeps every key; other range inputs (size, opacity, the
  // colour bar's range) keep their arrows
  const type = tag === "INPUT" ? String(origin.type || "text").toLowerCase() : "";
  if (tag === "TEXTAREA" || (tag === "INPUT" && !/^(range|checkbox|radio|button|submit|reset|color)$/.test(type))) return null;
  if (type === "range" && origin !== slider && (ev.key === "ArrowRight" || ev.key === "ArrowLeft")) return null;
  if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
    if (origin === slider) return null; // the slider moves itself (its input event seeks)
    return ev.key === "ArrowRight" ? "step+1" : "step-1";
  }
  if (ev.key === " " || ev.code === "Space") {
    if (inControl && tag !== "INPUT") return null; // a button's or select's own space
    return "toggle";
  }
  if (ev.key === "Escape") return "escape";
  return null;
}

/**
 * Bind the DOM: els = {root, mapEl, slider, playBtn, speedSel, colorSel, splitSel, misBox,
 * flipBox, trailBox, panBtn, lassoBtn, clearBtn, resetBtn, sizeInput, opacityInput, autoOpacity};
 * actions: see app.js (#actions). guard(fn) reports errors. Returns a function that unbinds.
 */
export function bindInput(els, actions, guard = (fn) => fn()) {
  const offs = [];
  const listen = (target, type, fn, opts) => {
    if (!target) return;
    const g = (ev) => guard(() => fn(ev));
    target.addEventListener(type, g, opts);
    offs.push(() => target.removeEventListener(type, g, opts));
  };
  const { root, mapEl, slider } = els;

  listen(els.playBtn, "click", () => actions.togglePlay());
  // The slider: read its value first (pausing redraws the controls).
  listen(slider, "input", () => actions.seekIndex(Number(slider.value)));
  listen(slider, "change", () => actions.seekIndex(Number(slider.value)));
  listen(els.speedSel, "change", () => actions.setSpeed(Number(els.speedSel.value)));
  listen(els.colorSel, "change", () => actions.setOption("colorBy", els.colorSel.value));
  listen(els.splitSel, "change", () => actions.setOption("split", els.splitSel.value));
  listen(els.misBox, "change", () => actions.setOption("onlyMisclassified", els.misBox.checked));
  listen(els.flipBox, "change", () => actions.setOption("onlyFlipped", els.flipBox.checked));
  listen(els.trailBox, "change", () => actions.setOption("trails", els.trailBox.checked));
  listen(els.sizeInput, "input", () => actions.setOption("pointSize", Number(els.sizeInput.value)));
  listen(els.opacityInput, "input", () => actions.setOption("pointOpacity", Number(els.opacityInput.value)));
  listen(els.autoOpacity, "click", () => actions.setOption("pointOpacity", null));
  listen(els.panBtn, "click", () => actions.setMode("pan"));
  listen(els.lassoBtn, "click", () => actions.setMode("lasso"));
  listen(els.clearBtn, "click", () => actions.clearSelection());
  listen(els.resetBtn, "click", () => actions.resetView());

  const onKey = (ev) => {
    if (!isWidgetKey(ev, root)) return;
    ev.stopPropagation();
    const what = keyAction(ev, originOf(ev), root, slider);
    if (!what) return;
    ev.preventDefault();
    if (what === "step+1") actions.step(1);
    else if (what === "step-1") actions.step(-1);
    else if (what === "toggle") actions.togglePlay();
    else if (what === "escape") actions.escape();
  };
  const stop = (ev) => isWidgetKey(ev, root) && ev.stopPropagation();
  listen(window, "keydown", onKey, true);
  listen(window, "keyup", stop, true);
  listen(window, "keypress", stop, true);

  const local = (ev) => {
    const r = mapEl.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  // Wheel zooms the map and never scrolls the notebook.
  listen(mapEl, "wheel", (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    const [sx, sy] = local(ev);
    actions.zoomAt(sx, sy, Math.exp(-ev.deltaY * (ev.deltaMode === 1 ? 0.05 : 0.0015)));
  }, { passive: false });

  let drag = null;
  listen(mapEl, "pointerdown", (ev) => {
    if (ev.button !== 0) return;
    root.focus({ preventScroll: true });
    const [sx, sy] = local(ev);
    mapEl.setPointerCapture(ev.pointerId);
    const lasso = actions.mode() === "lasso" || ev.shiftKey || ev.altKey;
    drag = { sx, sy, lastX: sx, lastY: sy, moved: false, lasso };
    if (lasso) actions.lassoStart(sx, sy);
    actions.hover(null);
  });
  listen(mapEl, "pointermove", (ev) => {
    const [sx, sy] = local(ev);
    if (!drag) return actions.hoverAt(sx, sy);
    if (Math.hypot(sx - drag.sx, sy - drag.sy) > 3) drag.moved = true;
    if (drag.lasso) actions.lassoExtend(sx, sy);
    else if (drag.moved) actions.panBy(sx - drag.lastX, sy - drag.lastY);
    drag.lastX = sx;
    drag.lastY = sy;
  });
  listen(mapEl, "pointerup", (ev) => {
    const d = drag;
    drag = null;
    if (!d) return;
    const [sx, sy] = local(ev);
    if (!d.moved) actions.clickAt(sx, sy, ev);
    else if (d.lasso) actions.lassoEnd(ev.shiftKey ? "add" : ev.altKey ? "subtract" : "replace");
    else actions.panEnd();
  });
  listen(mapEl, "pointerleave", () => actions.hover(null));
  return () => offs.forEach((off) => off());
}
