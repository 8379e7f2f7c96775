"""The widget protocol in Python: the golden vectors (tests/protocol_vectors.json) are
exactly what dvi_widget/widget/protocol.py produces, and the widget's traits and meta
follow the tables there. js/test/vectors.test.js checks the same file from JS."""
from __future__ import annotations

import base64
import json
import pathlib

import numpy as np

from browser.fake_vis import FakeVisualization
from dvi_widget.widget import protocol as P
from dvi_widget.widget.widget import DVIWidget, EpochData

import make_protocol_vectors

VECTORS = pathlib.Path(__file__).with_name("protocol_vectors.json")


def test_golden_vectors_are_what_python_encodes():
    assert VECTORS.read_text() == make_protocol_vectors.render(), (
        "the codecs changed: if intended, run python tests/make_protocol_vectors.py and make js/src/protocol.js follow"
    )


def test_python_decodes_the_vectors():
    v = json.loads(VECTORS.read_text())
    raw = lambda k: base64.b64decode(v[k]["bytes"])  # noqa: E731
    np.testing.assert_array_equal(P.decode_positions(raw("positions")), np.array(v["positions"]["xy"], np.float32))
    np.testing.assert_allclose(P.decode_probabilities(raw("probabilities")), v["probabilities"]["decoded"], atol=1e-7)
    assert P.decode_classes(raw("classes_uint16"), 300).tolist() == v["classes_uint16"]["values"]
    assert P.decode_indices(raw("selected")).tolist() == v["selected"]["decoded"]
    assert P.png_size(raw("png")) == (v["png"]["width"], v["png"]["height"])


def test_widget_traits_match_the_protocol_table():
    w = DVIWidget(FakeVisualization(n=50, n_classes=3, epochs=(1, 2)))
    synced = {name for name in w.keys if not name.startswith("_") and name not in ("layout", "tabbable", "tooltip")}
    assert synced == {t.name for t in P.WIDGET_TRAITS}
    child = {name for name in EpochData().keys if not name.startswith("_") and name not in ("layout", "tabbable", "tooltip")}
    assert child == {t.name for t in P.EPOCH_TRAITS}


def test_meta_holds_exactly_the_documented_fields():
    w = DVIWidget(FakeVisualization(n=50, n_classes=3, epochs=(1, 2)))
    assert set(w.meta) == set(P.META_FIELDS)


def test_protocol_md_describes_every_trait_and_meta_field():
    text = (pathlib.Path(__file__).parents[1] / "PROTOCOL.md").read_text()
    for t in (*P.WIDGET_TRAITS, *P.EPOCH_TRAITS):
        assert f"`{t.name}`" in text, t.name
    for f in P.META_FIELDS:
        assert f"`{f}`" in text, f
