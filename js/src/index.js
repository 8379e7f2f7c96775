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

/**
 * In a notebook the kernel shows a static picture of the map as an output of
 * its own beside the live view (dvi_widget/outputs/pictures.py static_outputs),
 * for pages where no widget manager runs. Where this live view renders, the
 * picture in the same cell's outputs (JupyterLab, Notebook 7 and Voila:
 * .jp-OutputArea; classic pages: .output) is hidden.
 */
function hideStaticPicture(el, tries = 8) {
  const area = el.isConnected ? el.closest(".jp-OutputArea, .output") : null;
  if (!area) {
    // not in the page yet (front ends attach the view after render returns), or not a notebook
    if (!el.isConnected && tries > 0) setTimeout(() => hideStaticPicture(el, tries - 1), 250);
    return;
  }
  for (const pic of area.querySelectorAll(".dvi-static")) {
    const box = pic.closest(".jp-OutputArea-child, .output_area") || pic;
    if (!box.contains(el)) box.style.display = "none";
  }
}

function render({ model, el, host }) {
  addStyle(el);
  let app = null;
  try {
    app = new DVIApp({ model, el, host, onError: (err) => showError(el, err) });
  } catch (err) {
    showError(el, err);
  }
  hideStaticPicture(el);
  return () => app && app.dispose();
}

export default { render };
export { showError };
