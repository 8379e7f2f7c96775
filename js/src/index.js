/**
 * anywidget entry point. Builds the app inside the cell and turns any failure
 * into a visible message in the cell instead of a blank output.
 */
import css from "./style.css";
import analysisCss from "./analysis.css";
import { DVIApp } from "./app.js";

function showError(el, err) {
  console.error("[dvi_widget]", err);
  let box = el.querySelector(".dvi-error");
  if (!box) {
    box = document.createElement("div");
    box.className = "dvi-error";
    el.prepend(box);
  }
  const msg = err && err.message ? err.message : String(err);
  box.textContent = `dvi_widget failed in the browser: ${msg}`;
}

function addStyle(el) {
  const style = document.createElement("style");
  style.textContent = css + analysisCss;
  el.append(style);
}

function render({ model, el, host }) {
  addStyle(el);
  let app = null;
  try {
    app = new DVIApp({ model, el, host, onError: (err) => showError(el, err) });
  } catch (err) {
    showError(el, err);
  }
  return () => app && app.dispose();
}

export default { render };
export { showError };
