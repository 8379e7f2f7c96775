"""vis.probe(epoch, xy): what the map decodes at a location, and whether that is backed by data.

The probe's class probabilities are the head applied to the inverse projection there; its
nearest samples and distance are a brute-force search around the decoded point; a location
far outside the map is flagged as extrapolating, the samples' own positions are not.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

import dvi_widget as dvi


def locations(vis, e):
    x0, x1, y0, y1 = vis.extent
    rng = np.random.default_rng(0)
    inside = np.c_[rng.uniform(x0, x1, 20), rng.uniform(y0, y1, 20)]
    return np.r_[vis.embedding(e)[:10], inside, [[x0, y0], [x1, y1]]].astype(np.float32)


def test_probabilities_are_the_head_of_the_inverse(small_run):
    vis = small_run
    for e in vis.epochs:
        xy = locations(vis, e)
        got = vis.probe(e, xy)
        with torch.no_grad():
            want = torch.softmax(vis.head(e)(torch.from_numpy(vis.inverse(e, xy))), 1).numpy()
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-6)
        np.testing.assert_array_equal(got["prediction"], want.argmax(1))
        np.testing.assert_allclose(got["features"], vis.inverse(e, xy))
        assert [vis.classes[c] for c in got["prediction"]] == list(got["class_name"])
        one = vis.probe(e, tuple(map(float, xy[3])))
        np.testing.assert_allclose(one["probabilities"], want[3], atol=1e-6)
        assert one["prediction"] == int(want[3].argmax()) and isinstance(one["extrapolating"], bool)


def test_nearest_samples_and_distance_are_a_brute_force_search(small_run):
    vis, e = small_run, small_run.epochs[-1]
    xy = locations(vis, e)
    got = vis.probe(e, xy, k=5)
    h, emb = vis.features(e), vis.embedding(e)
    decoded = vis.inverse(e, xy)
    d = np.linalg.norm(h[None, :, :] - decoded[:, None, :], axis=2)
    want = np.argsort(d, axis=1)[:, :5]
    np.testing.assert_array_equal(np.sort(got["nearest"], 1), np.sort(want, 1))
    np.testing.assert_allclose(got["distance"], d.min(1), rtol=1e-5)
    d2 = np.linalg.norm(emb[None] - xy[:, None], axis=2)
    # by distance: samples at one and the same map position tie, in any order
    np.testing.assert_allclose(np.take_along_axis(d2, got["nearest_2d"], 1), np.sort(d2, 1)[:, :5], atol=1e-5)
    np.testing.assert_allclose(got["distance_2d"], np.sort(d2, 1)[:, :5], atol=1e-5)
    # the percentile compares with each sample's distance to its own nearest neighbour
    own = np.sort(NearestNeighbors(n_neighbors=2).fit(h).kneighbors(h)[0][:, 1])
    np.testing.assert_allclose(got["distance_percentile"], np.searchsorted(own, got["distance"]) / len(h), atol=0.005)


def test_far_outside_the_map_is_extrapolating_and_the_samples_are_not(small_run):
    vis, e = small_run, small_run.epochs[-1]
    x0, x1, y0, y1 = vis.extent
    far = vis.probe(e, (x1 + 5 * (x1 - x0), y1 + 5 * (y1 - y0)))
    assert far["extrapolating"] and far["distance_percentile"] == 1.0
    at_samples = vis.probe(e, vis.embedding(e)[:200])
    assert np.median(at_samples["distance_percentile"]) < 0.9
    assert at_samples["extrapolating"].mean() < 0.2


def test_without_features_the_probe_uses_the_map(small_run, tmp_path):
    saved = dvi.Visualization.load(small_run.save(tmp_path / "saved"))
    e = saved.epochs[-1]
    p = saved.probe(e, (0.0, 0.0))
    assert p["neighbours_in"] == "map" and np.isnan(p["distance"]) and not p["extrapolating"]
    np.testing.assert_allclose(p["probabilities"], small_run.probe(e, (0.0, 0.0))["probabilities"], atol=1e-6)


def test_bad_locations_are_refused(small_run):
    with pytest.raises(dvi.DVIError, match=r"xy must be one point \(x, y\) or an \(M, 2\) array"):
        small_run.probe(1, [1.0, 2.0, 3.0])
    with pytest.raises(dvi.DVIError, match="finite"):
        small_run.probe(1, [np.nan, 0.0])
    with pytest.raises(dvi.DVIError, match="unknown epoch"):
        small_run.probe(9, [0.0, 0.0])


class _Page:
    """Stands in for the widget in a request round trip: holds the vis, records what is sent."""

    def __init__(self, vis):
        self.vis, self.sent = vis, []

    def send(self, msg):
        self.sent.append(msg)


def test_the_page_s_probe_request_is_answered_with_the_probe(small_run):
    import json
    from dvi_widget.widget.requests import handle
    page = _Page(small_run)
    handle(page, {"type": "dvi_request", "request": "probe", "id": 7, "epoch": 2, "x": 0.5, "y": -0.5})
    (msg,) = page.sent
    assert msg["type"] == "dvi_reply" and msg["id"] == 7 and "error" not in msg
    json.dumps(msg)  # plain JSON: it travels as a custom message
    want = small_run.probe(2, (0.5, -0.5), k=6)
    np.testing.assert_allclose(msg["reply"]["probabilities"], want["probabilities"], atol=1e-6)
    assert msg["reply"]["nearest"] == want["nearest"].tolist() and msg["reply"]["prediction"] == want["prediction"]
    handle(page, {"type": "dvi_request", "request": "probe", "id": 8, "epoch": 99, "x": 0, "y": 0})
    assert page.sent[-1]["id"] == 8 and "unknown epoch 99" in page.sent[-1]["error"]
    handle(page, {"type": "something else"})
    assert len(page.sent) == 2
