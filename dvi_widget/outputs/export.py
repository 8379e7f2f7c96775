"""Offline HTML export: one self-contained page, no CDN, no kernel.

``w.export_html(path)``, ``vis.export_html(path)`` and ``dvi-widget export RUN_DIR OUT.html``
write one HTML file holding

- the widget's own JS bundle (``dvi_widget/static/widget.js``, the same code the
  notebook runs), kept as a JSON string and imported from a ``blob:`` URL;
- the widget's synced state (every trait, every epoch's child model) as JSON in a
  ``<script type="application/json">``; binary buffers are zlib-compressed and
  base64-encoded, and unpacked in the page (``DecompressionStream``);
- a small in-page stand-in for the widget model (get / set / on / off /
  save_changes / send, child models for the epochs), so the bundle runs as it
  does in Jupyter: playback, lasso, hover thumbnails, inspector, trails,
  filters, with the epoch, selection, filters and view as they were.

Class names and labels travel only inside the JSON (``<``, ``>``, ``&``, U+2028
and U+2029 escaped), never as markup, and the widget sets them as text. A
Content-Security-Policy admits only the page's own loader script (by hash) and
the bundle's ``blob:`` URL, and forbids every network request.

Not ipywidgets' ``embed_minimal_html``: that page loads the widget manager from
a CDN and, with default settings, drops anywidget's code.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import json
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..store.atomic import write_text_atomic
from ..errors import DVIError

if TYPE_CHECKING:  # outputs import the widget only for type checking (README.md, "Package layout")
    from ..widget.widget import DVIWidget

#: The widget's JS bundle (the same file the notebook runs), read when a widget does not carry it.
BUNDLE = Path(__file__).resolve().parents[1] / "widget" / "static" / "widget.js"

THUMBNAILS = ("all", "selected", "none")
#: Buffers smaller than this are stored as plain base64 (compressing them saves nothing).
_MIN_COMPRESS = 256


def json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``</script>``, no comment
    openers, no raw line separators (``<``, ``>``, ``&``, U+2028, U+2029 as \\u escapes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _binary(data: bytes, shuffle: int = 0) -> dict:
    """A buffer as {"$binary": base64, "deflate": bool, "shuffle": item size or 0}.

    ``shuffle`` (4 for float32) stores byte planes one after another before compressing:
    the exponent bytes of nearby floats then sit together and compress far better.
    """
    raw = bytes(data)
    out: dict[str, Any] = {"n": len(raw)}
    if shuffle and len(raw) % shuffle == 0 and len(raw) >= _MIN_COMPRESS:
        raw = np.frombuffer(raw, dtype=np.uint8).reshape(-1, shuffle).T.tobytes()
        out["shuffle"] = shuffle
    if len(raw) >= _MIN_COMPRESS:
        packed = zlib.compress(raw, 9)
        if len(packed) < len(raw) * 0.95:
            out["deflate"] = True
            raw = packed
    if not out.get("deflate") and out.get("shuffle"):  # undo: not worth it
        raw, out = bytes(data), {"n": len(raw)}
    out["$binary"] = base64.b64encode(raw).decode("ascii")
    return out


# Float32 buffers (shuffled before compressing); everything else is bytes.
_FLOAT_TRAITS = {"positions"}


def _encode_state(state: dict, skip: Iterable[str] = ()) -> dict:
    out = {}
    for k, v in state.items():
        if k.startswith("_") or k in skip:
            continue
        if isinstance(v, (bytes, bytearray, memoryview)):
            out[k] = _binary(bytes(v), 4 if k in _FLOAT_TRAITS else 0)
        elif isinstance(v, str) and v.startswith("IPY_MODEL_"):
            continue  # layout and other widget references the map does not use
        else:
            out[k] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    """JSON-able copy (tuples to lists, numpy scalars to numbers, non-finite floats to None)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if np.isfinite(f) else None
    return v


def _widget_payload(w: Any, thumbnails: str) -> dict:
    """The widget's synced state, its epochs' child states, ready for JSON."""
    import ipywidgets

    state = w.get_state()
    children: dict[str, list] = {}
    for name in w.keys:
        if name.startswith("_"):
            continue
        value = getattr(w, name, None)
        if isinstance(value, (list, tuple)) and value and all(isinstance(c, ipywidgets.Widget) for c in value):
            children[name] = [_encode_state(c.get_state()) for c in value]
    skip = set(children) | {"thumbnails"}
    out = _encode_state(state, skip=skip)
    meta = dict(out.get("meta") or {})
    meta["live"] = False
    meta["kernel"] = False  # no kernel answers requests (neighbours, probe): the page says so
    thumbs = bytes(state.get("thumbnails") or b"")
    shape = meta.get("thumbnail_shape")
    if thumbnails == "none" or not thumbs or not shape:
        meta["thumbnail_shape"] = None
        out["thumbnails"] = _binary(b"")
    elif thumbnails == "all":
        out["thumbnails"] = _binary(thumbs)
    else:  # only the selected samples' images; the page fills the rest with a blank tile
        item = int(shape["h"]) * int(shape["w"]) * int(shape["c"])
        shown = np.asarray(w.display_indices, dtype=np.int64)
        pos = np.flatnonzero(np.isin(shown, np.asarray(list(w.selected), dtype=np.int64)))
        rows = np.frombuffer(thumbs, dtype=np.uint8).reshape(-1, item)[pos]
        out["thumbnails"] = {"$sparse": {"n": len(thumbs), "item": item,
                                         "rows": _binary(pos.astype("<u4").tobytes()),
                                         "data": _binary(rows.tobytes()), "fill": 236}}
    out["meta"] = _plain(meta)
    return {"state": out, "children": children}


def _bundle(w: Any) -> str:
    esm = getattr(w, "_esm", None)  # anywidget keeps the bundle's text here
    if isinstance(esm, str) and "render" in esm and len(esm) > 1000:
        return str(esm)
    return BUNDLE.read_text(encoding="utf-8")


_LOADER = r"""
(function () {
  "use strict";
  var status = document.getElementById("dvi-export-status");
  function fail(err) {
    console.error("[dvi_widget export]", err);
    status.hidden = false;
    status.textContent = "This page could not show the map: " + (err && err.message ? err.message : String(err));
    document.body.dataset.ready = "error";
  }
  function bytesOf(b64) {
    var s = atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  async function unpack(v) {
    var bytes = bytesOf(v["$binary"]);
    if (v.deflate) {
      if (typeof DecompressionStream !== "function") throw new Error("this browser lacks DecompressionStream (use a current Chrome, Edge, Firefox or Safari)");
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    if (v.shuffle) {
      var k = v.shuffle, m = bytes.length / k, plain = new Uint8Array(bytes.length);
      for (var p = 0; p < k; p++) for (var i = 0; i < m; i++) plain[i * k + p] = bytes[p * m + i];
      bytes = plain;
    }
    if (bytes.length !== v.n) throw new Error("damaged buffer: " + bytes.length + " bytes, expected " + v.n);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  async function sparse(s) {
    var rows = await unpack(s.rows), data = await unpack(s.data), item = s.item;
    var out = new Uint8Array(s.n).fill(s.fill || 0);
    var src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (var j = 0; j < rows.byteLength / 4; j++) {
      var r = rows.getUint32(4 * j, true);
      out.set(src.subarray(j * item, (j + 1) * item), r * item);
    }
    return new DataView(out.buffer);
  }
  async function decode(state) {
    var out = {};
    for (var key of Object.keys(state)) {
      var v = state[key];
      if (v && typeof v === "object" && "$binary" in v) out[key] = await unpack(v);
      else if (v && typeof v === "object" && "$sparse" in v) out[key] = await sparse(v["$sparse"]);
      else out[key] = v;
    }
    return out;
  }
  // The stand-in for the widget model: what the bundle calls on a Jupyter model.
  function Model(state, id) {
    this.model_id = id;
    this._state = state;
    this._on = new Map();
  }
  Model.prototype.get = function (k) { return this._state[k]; };
  Model.prototype.set = function (k, v) {
    if (k && typeof k === "object") { for (var key of Object.keys(k)) this.set(key, k[key]); return; }
    var old = this._state[k];
    this._state[k] = v;
    if (old !== v) { this._emit("change:" + k, v); this._emit("change", k); }
  };
  Model.prototype.on = function (ev, cb, ctx) {
    for (var name of String(ev).split(/\s+/)) {
      if (!this._on.has(name)) this._on.set(name, []);
      this._on.get(name).push([cb, ctx]);
    }
  };
  Model.prototype.off = function (ev, cb) {
    if (!ev) { this._on.clear(); return; }
    for (var name of String(ev).split(/\s+/)) {
      if (!cb) this._on.delete(name);
      else this._on.set(name, (this._on.get(name) || []).filter(function (p) { return p[0] !== cb; }));
    }
  };
  Model.prototype._emit = function (name, v) {
    for (var p of (this._on.get(name) || []).slice()) p[0].call(p[1] || this, this, v);
  };
  Model.prototype.save_changes = function () { this._emit("saved"); };
  Model.prototype.send = function () { /* no kernel: nothing to send to */ };
  async function main() {
    var data = JSON.parse(document.getElementById("dvi-export-data").textContent);
    var code = JSON.parse(document.getElementById("dvi-export-bundle").textContent);
    var state = await decode(data.state);
    var models = {};
    for (var name of Object.keys(data.children)) {
      var list = [];
      for (var j = 0; j < data.children[name].length; j++) {
        var id = name + "-" + j;
        models[id] = new Model(await decode(data.children[name][j]), id);
        list.push(models[id]);
      }
      state[name] = list;
    }
    var model = new Model(state, "dvi-export");
    var host = { getModel: async function (id) { return models[String(id).replace(/^anywidget:/, "")]; } };
    var url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    var mod = await import(url);
    var widget = mod.default && typeof mod.default === "function" ? await mod.default() : mod.default;
    var el = document.getElementById("dvi-export");
    if (typeof widget.initialize === "function") await widget.initialize({ model: model });
    await widget.render({ model: model, el: el, host: host });
    window.dviExport = { model: model, models: models };
    status.hidden = true;
    document.body.dataset.ready = "1";
  }
  main().catch(fail);
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src '{script_hash}' blob:; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src data: blob:; base-uri 'none'; form-action 'none'">
<meta name="generator" content="dvi_widget {version}">
<title>{title}</title>
<style>
html, body {{ margin: 0; background: #ffffff; color: #1f1f1f;
  font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 13px; }}
.dvi-export-page {{ max-width: 1400px; margin: 0 auto; padding: 12px 16px 24px; }}
.dvi-export-head h1 {{ font-size: 1.25em; margin: 0 0 2px; }}
.dvi-export-head p {{ margin: 0 0 10px; color: #616161; }}
#dvi-export-status {{ padding: 8px; border: 1px solid #d32f2f; color: #b71c1c; margin-bottom: 8px; }}
</style>
</head>
<body>
<div class="dvi-export-page">
<header class="dvi-export-head"><h1>{title}</h1><p>{subtitle}</p></header>
<div id="dvi-export-status" role="status">Loading the map…</div>
<noscript>This page needs JavaScript to show the map.</noscript>
<div id="dvi-export"></div>
</div>
<script type="application/json" id="dvi-export-data">{data}</script>
<script type="application/json" id="dvi-export-bundle">{bundle}</script>
<script>{loader}</script>
</body>
</html>
"""

def _created_date() -> str:
    """The page's creation date (UTC, ``YYYY-MM-DD``): a date, not a time, so two exports of the
    same widget are byte-identical (a time to the second made them differ by one byte). With the
    reproducible-builds variable ``SOURCE_DATE_EPOCH`` (seconds) set, that date instead."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).date().isoformat()
        except (ValueError, OverflowError, OSError):
            raise DVIError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}") from None
    return _dt.datetime.now(_dt.timezone.utc).date().isoformat()


def render_html(w: "DVIWidget", *, thumbnails: str = "all", title: str | None = None) -> str:
    """The export page of widget ``w`` as a string."""
    if thumbnails not in THUMBNAILS:
        raise DVIError(f"thumbnails must be one of {THUMBNAILS}, got {thumbnails!r}")
    from .. import __version__

    payload = _widget_payload(w, thumbnails)
    vis = w.vis
    epochs = list(w.epochs)
    payload["generator"] = {"name": "dvi_widget", "version": __version__, "created": _created_date()}
    run_name = Path(str(getattr(vis, "path", "run"))).name
    title = title if title is not None else f"DVI map: {run_name}"
    span = f"epochs {epochs[0]}–{epochs[-1]}" if len(epochs) > 1 else f"epoch {epochs[0]}"
    subtitle = (f"{len(w.display_indices):,} samples, {len(vis.classes)} classes, {span}. "
                f"Offline copy made by dvi_widget {__version__} on {payload['generator']['created'][:10]}: "
                "play, lasso, hover and inspect work; nothing is sent anywhere.")
    loader = _LOADER
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(loader.encode("utf-8")).digest()).decode("ascii")
    return _PAGE.format(
        script_hash=script_hash, version=html.escape(__version__), title=html.escape(title),
        subtitle=html.escape(subtitle), data=json_for_script(payload), bundle=json_for_script(_bundle(w)),
        loader=loader)


def export_html(source: Any, path: str | os.PathLike, *, thumbnails: str = "all", title: str | None = None,
                epoch: int | None = None, selected: Iterable[int] | None = None, **widget_options: Any) -> Path:
    """Write one self-contained offline HTML page of a widget or a Visualization to ``path``.

    ``source``: a ``DVIWidget`` (its epoch, selection, filters and view are kept) or a
    ``Visualization`` (a widget is made for it; ``epoch``, ``selected`` and widget options such
    as ``max_points`` apply). ``thumbnails``: "all" (default), "selected" (only the selected
    samples' images; smaller) or "none". Returns the path written.
    """
    if thumbnails not in THUMBNAILS:
        raise DVIError(f"thumbnails must be one of {THUMBNAILS}, got {thumbnails!r}")
    if _is_widget(source):
        if widget_options:
            raise DVIError(f"widget options {sorted(widget_options)} apply only when exporting a Visualization")
        w = source
        if epoch is not None or selected is not None:
            raise DVIError("epoch= and selected= apply to a Visualization; set w.epoch / w.select() instead")
    else:
        w = source.show(**widget_options)  # the Visualization makes its widget (vis.show)
        if epoch is not None:
            w.epoch = int(epoch)
        if selected is not None:
            w.select(selected)
    return write_text_atomic(path, render_html(w, thumbnails=thumbnails, title=title))


def _is_widget(source: Any) -> bool:
    """A DVIWidget (or one of its subclasses), told apart without importing the widget module."""
    return hasattr(source, "epoch_data") and hasattr(source, "display_indices") and hasattr(source, "get_state")


def export_run(run_dir: str | os.PathLike, path: str | os.PathLike, **options: Any) -> Path:
    """``dvi-widget export RUN_DIR OUT.html``: export a fitted run directory."""
    from ..results import Visualization

    vis = Visualization.load(run_dir)
    if not vis.epochs:
        raise DVIError(f"{run_dir} has no fitted epochs yet: run `dvi-widget fit {run_dir}` first")
    return export_html(vis, path, **options)
