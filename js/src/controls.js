/**
 * The widget's DOM: toolbar (playback, colouring, filters, point size and
 * opacity, modes), the map, the side panels. `buildDom` makes the elements;
 * `syncControls` shows plain state in them.
 */
import { h } from "./dom.js";
import { SPEEDS } from "./playback.js";
import { STYLE } from "./style.js";

export function buildDom(el) {
  const opt = (v, text) => h("option", { value: v, text });
  const [s0, s1] = STYLE.interaction.point_size_range;
  const [o0, o1] = STYLE.interaction.point_opacity_range;
  const els = {};
  els.playBtn = h("button", { class: "dvi-btn dvi-play", type: "button", title: "play / pause (space)", text: "▶" });
  els.slider = h("input", { class: "dvi-slider", type: "range", min: 0, max: 0, step: 1, value: 0, "aria-label": "epoch" });
  els.epochLabel = h("span", { class: "dvi-epoch-label", text: "epoch —" });
  els.sliderMin = h("span", { class: "dvi-slider-end" });
  els.sliderMax = h("span", { class: "dvi-slider-end" });
  els.speedSel = h("select", { class: "dvi-speed", title: "playback speed (epochs per second)" }, SPEEDS.map((s) => opt(s, `${s}×`)));
  els.colorSel = h("select", { class: "dvi-color-by", title: "colour points by" }, opt("label", "colour: label"), opt("prediction", "colour: prediction"), opt("correct", "colour: correct?"));
  els.splitSel = h("select", { class: "dvi-split", title: "train / test samples" }, opt("both", "train + test"), opt("train", "train"), opt("test", "test"));
  const check = (cls, text, title) => {
    const box = h("input", { type: "checkbox", class: cls });
    return [box, h("label", { class: "dvi-check", title }, box, text)];
  };
  const [misBox, misLabel] = check("dvi-only-mis", "misclassified", "show only misclassified samples");
  const [flipBox, flipLabel] = check("dvi-only-flip", "flipped", "show only samples whose prediction changed at this epoch");
  const [trailBox, trailLabel] = check("dvi-trails", "trails", "draw the selected samples' paths over all epochs (a sample of large selections)");
  Object.assign(els, { misBox, flipBox, trailBox });
  els.sizeInput = h("input", { class: "dvi-point-size", type: "range", min: s0, max: s1, step: 0.05, value: 1, "aria-label": "point size", title: "point size (× the automatic size)" });
  els.opacityInput = h("input", { class: "dvi-point-opacity", type: "range", min: o0, max: o1, step: 0.05, value: 1, "aria-label": "point opacity", title: "point opacity" });
  els.autoOpacity = h("button", { class: "dvi-btn dvi-auto-opacity", type: "button", title: "automatic opacity (by the number of points)", text: "auto" });
  els.panBtn = h("button", { class: "dvi-btn dvi-mode-pan", type: "button", title: "drag to pan", text: "✥ pan" });
  els.lassoBtn = h("button", { class: "dvi-btn dvi-mode-lasso", type: "button", title: "drag to select; shift adds, alt removes", text: "◌ lasso" });
  els.clearBtn = h("button", { class: "dvi-btn dvi-clear", type: "button", title: "clear the selection", text: "clear" });
  els.resetBtn = h("button", { class: "dvi-btn dvi-reset", type: "button", title: "reset the view", text: "reset" });
  els.selCount = h("span", { class: "dvi-sel-count" });
  els.mapEl = h("div", { class: "dvi-map" });
  els.messageEl = h("div", { class: "dvi-message", hidden: true });
  els.noteEl = h("div", { class: "dvi-note", hidden: true, role: "status" });
  els.tooltip = h("div", { class: "dvi-tooltip", hidden: true });
  els.legendEl = h("div", { class: "dvi-panel dvi-legend" });
  els.metricsEl = h("div", { class: "dvi-panel dvi-faith" });
  els.inspectorEl = h("div", { class: "dvi-panel dvi-inspector", hidden: true });
  els.root = h(
    "div",
    { class: "dvi-root", tabindex: 0, "aria-label": "DeepVisualInsight training map" },
    h(
      "div",
      { class: "dvi-toolbar" },
      h("div", { class: "dvi-group dvi-time" }, els.playBtn, els.sliderMin, els.slider, els.sliderMax, els.epochLabel, els.speedSel),
      h("div", { class: "dvi-group" }, els.colorSel, els.splitSel, misLabel, flipLabel, trailLabel),
      h(
        "div",
        { class: "dvi-group" },
        h("label", { class: "dvi-check", title: "point size" }, "size", els.sizeInput),
        h("label", { class: "dvi-check", title: "point opacity" }, "opacity", els.opacityInput),
        els.autoOpacity,
      ),
      h("div", { class: "dvi-group" }, els.panBtn, els.lassoBtn, els.clearBtn, els.resetBtn, els.selCount),
    ),
    h(
      "div",
      { class: "dvi-body" },
      h("div", { class: "dvi-map-wrap" }, els.mapEl),
      h("div", { class: "dvi-side" }, els.legendEl, els.metricsEl, els.inspectorEl),
    ),
  );
  els.mapEl.append(els.messageEl, els.noteEl, els.tooltip);
  el.append(els.root);
  return els;
}

/**
 * Show state in the controls. s: {opts, mode, playing, speed, numbers, current,
 * selectedCount, pointAlpha (the opacity in use)}.
 */
export function syncControls(els, s) {
  const o = s.opts;
  els.colorSel.value = o.colorBy;
  els.splitSel.value = o.split;
  els.misBox.checked = o.onlyMisclassified;
  els.flipBox.checked = o.onlyFlipped;
  els.trailBox.checked = o.trails;
  els.speedSel.value = String(s.speed);
  if (document.activeElement !== els.sizeInput) els.sizeInput.value = String(o.pointSize);
  if (document.activeElement !== els.opacityInput && s.pointAlpha != null) els.opacityInput.value = String(Math.round(s.pointAlpha * 100) / 100);
  els.autoOpacity.classList.toggle("dvi-active", o.pointOpacity == null);
  els.panBtn.classList.toggle("dvi-active", s.mode === "pan");
  els.lassoBtn.classList.toggle("dvi-active", s.mode === "lasso");
  els.mapEl.dataset.mode = s.mode;
  els.playBtn.textContent = s.playing ? "❚❚" : "▶";
  els.playBtn.setAttribute("aria-pressed", String(s.playing));
  const nums = s.numbers;
  els.slider.max = String(Math.max(0, nums.length - 1));
  els.slider.disabled = nums.length < 2;
  const idx = s.current != null ? nums.indexOf(s.current) : -1;
  if (idx >= 0 && els.slider.value !== String(idx)) els.slider.value = String(idx);
  els.slider.setAttribute("aria-valuetext", s.current == null ? "no epoch" : `epoch ${s.current}`);
  els.sliderMin.textContent = nums.length ? String(nums[0]) : "";
  els.sliderMax.textContent = nums.length ? String(nums[nums.length - 1]) : "";
  els.epochLabel.textContent = s.current == null ? "epoch —" : `epoch ${s.current}`;
  els.root.dataset.epoch = s.current == null ? "" : String(s.current);
  els.root.dataset.playing = String(s.playing);
  els.selCount.textContent = s.selectedCount ? `${s.selectedCount} selected` : "";
}
