"""Write tests/protocol_vectors.json: golden vectors of the widget protocol.

The file is what Python's codecs (dvi_widget/widget/protocol.py) produce for
fixed inputs. tests/test_protocol.py checks that Python still produces exactly
this file; js/test/protocol.test.js checks that JS decodes it to the same
values and encodes the selection to the same bytes. Regenerate after an
intended change of the protocol: python tests/make_protocol_vectors.py
"""
from __future__ import annotations

import base64
import json
import pathlib

import numpy as np

from dvi_widget.widget import protocol as P

OUT = pathlib.Path(__file__).with_name("protocol_vectors.json")


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def vectors() -> dict:
    xy = np.array([[0.0, 1.0], [2.5, -3.25], [1e-7, 65504.0]], dtype=np.float32)
    probs = [0.0, 0.5, 1.0, 0.123456, -0.1, 1.2, 1 / 3]
    classes8 = [0, 9, 3, 255]
    classes16 = [0, 299, 256, 17]
    sel_in = [70000, 5, 1, 5, 0]
    rgba = np.array([[[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 128]],
                     [[10, 20, 30, 255], [250, 250, 250, 255], [0, 0, 0, 0]]], dtype=np.uint8)
    png = P.encode_png(rgba)
    n = 3
    epoch_state = {
        "epoch": 7,
        "positions": b64(P.encode_positions(xy)),
        "predictions": b64(P.encode_classes(np.array([1, 0, 2]), 10)),
        "confidence": b64(P.encode_probabilities(np.array([0.9, 0.5, 1.0]))),
        "label_prob": b64(P.encode_probabilities(np.array([0.9, 0.25, 0.0]))),
        "background": b64(png),
        "background_extent": [-1.0, 1.0, -2.0, 2.0],
        "metrics": P.finite_metrics({"ppr": 0.98, "nn_rate@15": 0.1, "bad": float("nan")}),
    }
    meta = {
        "classes": ["zero", "one", "two"], "colors": ["#1f77b4", "#ff7f0e", "#2ca02c"], "n_samples": 5,
        "n_display": n, "thumbnail_shape": {"h": 8, "w": 8, "c": 1}, "extent": [-1.0, 1.0, -2.0, 2.0],
        "live": False, "run_id": "abc", "epochs": [7], "summary": {"stab_spearman": 0.5}, "kernel": True,
    }
    return {
        "_doc": "Golden vectors of the widget protocol, written by tests/make_protocol_vectors.py from dvi_widget/widget/protocol.py; checked by tests/test_protocol.py and js/test/protocol.test.js. Buffers are base64.",
        "widget_traits": [[t.name, t.wire, t.writer] for t in P.WIDGET_TRAITS],
        "epoch_traits": [[t.name, t.wire] for t in P.EPOCH_TRAITS],
        "meta_fields": sorted(P.META_FIELDS),
        "positions": {"xy": xy.tolist(), "bytes": b64(P.encode_positions(xy))},
        "probabilities": {"p": probs, "bytes": b64(P.encode_probabilities(np.array(probs))),
                          "decoded": P.decode_probabilities(P.encode_probabilities(np.array(probs))).tolist()},
        "classes_uint8": {"n_classes": 256, "values": classes8, "bytes": b64(P.encode_classes(np.array(classes8), 256))},
        "classes_uint16": {"n_classes": 300, "values": classes16, "bytes": b64(P.encode_classes(np.array(classes16), 300))},
        "selected": {"input": sel_in, "bytes": b64(P.encode_indices(sel_in)), "decoded": sorted(set(sel_in))},
        "png": {"bytes": b64(png), "width": 3, "height": 2},
        "not_png": {"bytes": b64(b"GIF89a" + bytes(30))},
        "epoch": {"n": n, "n_classes": 10, "state": epoch_state,
                  "decoded": {"epoch": 7, "positions": xy.reshape(-1).tolist(), "predictions": [1, 0, 2],
                              "confidence": P.decode_probabilities(P.encode_probabilities(np.array([0.9, 0.5, 1.0]))).tolist(),
                              "label_prob": P.decode_probabilities(P.encode_probabilities(np.array([0.9, 0.25, 0.0]))).tolist(),
                              "metrics": {"ppr": 0.98, "nn_rate@15": 0.1}}},
        "meta": meta,
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
