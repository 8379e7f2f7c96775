"""vis.neighbours(epoch, i, k): a sample's nearest neighbours in feature space, and which the map keeps.

Checked against brute force (scikit-learn) on the shared small MNIST run: the neighbours are
the k nearest by feature distance, nearest first, with those distances; ``in_2d`` says whether
each is among the k nearest on the map; and the per-sample rate averages to the epoch's
``nn_rate@15`` metric (it is that metric, per sample).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import dvi_widget as dvi


def brute(points: np.ndarray, i: int, k: int) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=k + 1).fit(points)
    idx = nn.kneighbors(points[i:i + 1], return_distance=False)[0]
    return idx[idx != i][:k]


@pytest.mark.parametrize("k", [15, 20])   # 15: from the fit's graph; 20: wider than it, exact from features
def test_neighbours_are_the_nearest_in_feature_space(small_run, k):
    vis, e = small_run, small_run.epochs[-1]
    h, emb = vis.features(e), vis.embedding(e)
    for i in (0, 17, 503, vis.n - 1):
        nb = vis.neighbours(e, i, k=k)
        assert nb.attrs["source"] == ("fit kNN graph" if k == 15 else "exact from features")
        assert list(nb["rank"]) == list(range(1, k + 1)) and len(nb) == k
        assert set(nb["sample"]) == set(brute(h, i, k))
        np.testing.assert_allclose(nb["distance"], np.linalg.norm(h[nb["sample"]] - h[i], axis=1), rtol=1e-5)
        assert np.all(np.diff(nb["distance"]) >= -1e-4), "nearest first"
        # in_2d: nearer on the map than i's k-th nearest sample there. Samples can share a position
        # (settle_on_map moves some to a pixel's centre); a neighbour tied with the k-th may go either way
        d_2d = np.linalg.norm(emb.astype(np.float64) - emb[i].astype(np.float64), axis=1)
        d_2d[i] = np.inf
        kth = np.sort(d_2d)[k - 1]
        untied = d_2d[nb["sample"]] != kth
        assert list(nb["in_2d"][untied]) == list(d_2d[nb["sample"]][untied] < kth)
        assert set(brute(emb.astype(np.float64), i, k)) >= set(nb["sample"][(d_2d[nb["sample"]] < kth)])
        np.testing.assert_allclose(nb["distance_2d"], np.linalg.norm(emb[nb["sample"]] - emb[i], axis=1), rtol=1e-5)
        np.testing.assert_array_equal(nb["label"], vis.labels[nb["sample"]])
        np.testing.assert_array_equal(nb["prediction"], vis.predictions(e)[nb["sample"]])
        assert nb.attrs["rate"] == pytest.approx(nb["in_2d"].mean())


def test_per_sample_rate_averages_to_the_nn_rate_metric(small_run):
    vis, e = small_run, small_run.epochs[-1]
    rates = [vis.neighbours(e, i, pandas=False).attrs["rate"] for i in range(vis.n)]
    assert np.mean(rates) == pytest.approx(vis.metrics[e]["nn_rate@15"], abs=0.01)


def test_saved_visualization_has_neighbours_without_distances(small_run, tmp_path):
    saved = dvi.Visualization.load(small_run.save(tmp_path / "saved"))
    e = saved.epochs[-1]
    nb = saved.neighbours(e, 5)
    np.testing.assert_array_equal(nb["sample"], small_run.neighbours(e, 5)["sample"])
    assert nb["distance"].isna().all() and nb["distance_2d"].notna().all()
    with pytest.raises(dvi.DVIError, match="stores a kNN graph of 15 neighbours and no features"):
        saved.neighbours(e, 5, k=20)


def test_bad_arguments_are_refused(small_run):
    with pytest.raises(dvi.DVIError, match=r"unknown epoch 0; valid epochs: \[1, 2, 3\]"):
        small_run.neighbours(0, 5)
    with pytest.raises(dvi.DVIError, match=r"sample index 1000 out of range\(0, 1000\)"):
        small_run.neighbours(1, 1000)
    with pytest.raises(dvi.DVIError, match="k must be an int"):
        small_run.neighbours(1, 5, k=0)


def test_the_page_s_neighbours_request_is_answered(small_run):
    import json
    from dvi_widget.widget.requests import handle

    class Page:
        vis, sent = small_run, []

        def send(self, msg):
            self.sent.append(msg)
    page = Page()
    handle(page, {"type": "dvi_request", "request": "neighbours", "id": 3, "epoch": 3, "index": 17})
    (msg,) = page.sent
    json.dumps(msg)
    want = small_run.neighbours(3, 17)
    rows = msg["reply"]["rows"]
    assert [r["sample"] for r in rows] == want["sample"].tolist()
    assert [r["in_2d"] for r in rows] == want["in_2d"].tolist()
    assert msg["reply"]["rate"] == pytest.approx(want.attrs["rate"]) and msg["reply"]["k"] == 15
