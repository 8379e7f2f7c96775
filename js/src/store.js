/**
 * Epoch store: follows the widget model's `epoch_data` list (one child model
 * per epoch), resolves each child once, decodes its buffers and keeps the
 * epochs sorted by number. Talks to models only through get/on and the
 * host's getModel (or widget_manager.get_model), so an in-page stand-in
 * model (offline export) can drive it too.
 */
import { decodeEpoch } from "./protocol.js";

const REF = "IPY_MODEL_";

/** Resolve a child reference ("IPY_MODEL_<id>") to a model with get/on. */
export async function resolveChild(ref, model, host) {
  if (ref && typeof ref === "object" && typeof ref.get === "function") return ref; // already a model
  const id = typeof ref === "string" && ref.startsWith(REF) ? ref.slice(REF.length) : ref;
  if (model.widget_manager && typeof model.widget_manager.get_model === "function") {
    return model.widget_manager.get_model(id);
  }
  // anywidget >= 0.10 host API names child models "anywidget:<id>"
  if (host && typeof host.getModel === "function") return host.getModel(`anywidget:${id}`);
  throw new Error(`cannot resolve epoch model ${ref}: no widget manager`);
}

export class EpochStore {
  constructor(model, host, nPoints, nClasses, onChange, onError) {
    this.model = model;
    this.host = host;
    this.n = nPoints;
    this.nClasses = nClasses;
    this.onChange = onChange;
    this.onError = onError;
    this.byRef = new Map(); // ref -> decoded epoch (or pending promise)
    this.epochs = []; // decoded, ascending by epoch number
    this.sync();
  }

  /** Epoch numbers loaded so far, ascending. */
  numbers() {
    return this.epochs.map((e) => e.epoch);
  }

  get(epochNumber) {
    return this.epochs.find((e) => e.epoch === epochNumber) || null;
  }

  indexOf(epochNumber) {
    return this.epochs.findIndex((e) => e.epoch === epochNumber);
  }

  /** Pick up children not seen before; earlier epochs are never decoded again. */
  sync() {
    const refs = this.model.get("epoch_data") || [];
    for (const ref of refs) {
      const key = typeof ref === "string" ? ref : ref && ref.model_id;
      if (this.byRef.has(key)) continue;
      this.byRef.set(key, "pending");
      resolveChild(ref, this.model, this.host)
        .then((child) => {
          const decoded = decodeEpoch((name) => child.get(name), this.n, this.nClasses);
          this.byRef.set(key, decoded);
          this.epochs.push(decoded);
          this.epochs.sort((a, b) => a.epoch - b.epoch);
          this.onChange(decoded);
        })
        .catch((err) => this.onError(err));
    }
  }
}
