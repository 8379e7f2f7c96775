"""DVIWidget in Python: traits, buffers, live refresh and errors (no browser)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from browser.fake_vis import FakeVisualization
from dvi_widget.widget.widget import (
    DVIWidget,
    EpochData,
    WidgetValueError,
    _indices_from_json,
    _indices_to_json,
    encode_probabilities,
    stratified_sample,
)


@pytest.fixture
def vis():
    return FakeVisualization(n=300, n_classes=4, epochs=(2, 5, 9), map_size=32)


def test_new_widget_opens_on_the_last_epoch_with_one_child_model_per_epoch(vis):
    w = DVIWidget(vis)
    assert w.epoch == 9
    assert w.epochs == [2, 5, 9]
    assert [c.epoch for c in w.epoch_data] == [2, 5, 9]
    assert all(isinstance(c, EpochData) for c in w.epoch_data)


def test_epoch_buffers_have_the_documented_types_and_sizes(vis):
    w = DVIWidget(vis)
    child = w.epoch_data[1]
    n = 300
    pos = np.frombuffer(child.positions, dtype="<f4").reshape(n, 2)
    np.testing.assert_array_equal(pos, vis.embedding(5))
    np.testing.assert_array_equal(np.frombuffer(child.predictions, np.uint8), vis.predictions(5))
    conf = np.frombuffer(child.confidence, "<u2") / 65535
    p = vis.probabilities(5)
    np.testing.assert_allclose(conf, p[np.arange(n), vis.predictions(5)], atol=1e-4)
    lp = np.frombuffer(child.label_prob, "<u2") / 65535
    np.testing.assert_allclose(lp, p[np.arange(n), vis.labels], atol=1e-4)
    png = Image.open(io.BytesIO(child.background))
    assert png.format == "PNG" and png.size == (32, 32)
    np.testing.assert_array_equal(np.asarray(png), vis.background(5))
    assert child.background_extent == list(vis.background_extent(5))
    assert child.metrics["ppr"] == pytest.approx(0.9)


def test_static_buffers_labels_split_thumbnails(vis):
    w = DVIWidget(vis)
    np.testing.assert_array_equal(np.frombuffer(w.labels, np.uint8), vis.labels)
    np.testing.assert_array_equal(np.frombuffer(w.split, np.uint8), vis.split == "test")
    assert w.indices == b"", "all points shown: no index map needed"
    assert w.meta["thumbnail_shape"] == {"h": 8, "w": 8, "c": 1}
    assert len(w.thumbnails) == 300 * 8 * 8
    assert w.meta["classes"] == vis.classes
    assert w.meta["colors"][0] == "#%02x%02x%02x" % tuple(vis.colors[0])


def test_no_number_lists_in_the_json_state(vis):
    """Per-sample data travels as buffers: the JSON part of the state stays small."""
    w = DVIWidget(vis)
    w.select(range(0, 300, 2))
    state = w.get_state()
    from ipywidgets.widgets.widget import _remove_buffers

    state.pop("_esm")  # the JS bundle itself
    json_state, _, buffers = _remove_buffers(state)
    assert len(json.dumps(json_state)) < 2000
    assert sum(len(memoryview(b)) for b in buffers) >= 150 * 4


def test_setting_an_unknown_epoch_raises_an_error_listing_valid_epochs(vis):
    w = DVIWidget(vis)
    with pytest.raises(ValueError, match=r"unknown epoch 3; valid epochs: \[2, 5, 9\]"):
        w.epoch = 3
    assert w.epoch == 9
    w.epoch = 2
    assert w.epoch == 2


def test_select_sorts_dedups_and_accepts_numpy(vis):
    w = DVIWidget(vis)
    w.select(np.array([7, 3, 3, 299]))
    assert w.selected == [3, 7, 299]
    w.select([])
    assert w.selected == []


@pytest.mark.parametrize("bad", [[300], [-1], [0, 1000]])
def test_select_out_of_range_raises_value_error(vis, bad):
    w = DVIWidget(vis)
    with pytest.raises(ValueError, match="out of range: this run has 300 samples"):
        w.select(bad)


def test_select_rejects_non_integers(vis):
    w = DVIWidget(vis)
    with pytest.raises(ValueError, match="integer"):
        w.select([1.5])


def test_selected_travels_as_a_uint32_buffer():
    buf = _indices_to_json([1, 5, 70000], None)
    assert isinstance(buf, memoryview) and buf.nbytes == 12
    assert np.frombuffer(buf, "<u4").tolist() == [1, 5, 70000]
    assert _indices_from_json(memoryview(np.array([4, 2], "<u4").tobytes()), None) == [4, 2]
    assert _indices_from_json([3], None) == [3]


def test_browser_selection_updates_python(vis):
    """A selection set in the browser (a uint32 buffer) arrives as a list of ints."""
    w = DVIWidget(vis)
    w.set_state({"selected": memoryview(np.array([10, 20], "<u4").tobytes())})
    assert w.selected == [10, 20]


def test_a_visualization_without_epochs_is_refused_outside_live_mode():
    empty = FakeVisualization(n=50, epochs=(1, 2), visible_epochs=0)
    with pytest.raises(ValueError, match="no fitted epochs"):
        DVIWidget(empty)


def test_live_widget_waits_then_refresh_sends_only_new_epochs():
    vis = FakeVisualization(n=80, epochs=(1, 2, 3), visible_epochs=0, map_size=16)
    w = DVIWidget(vis, live=True)
    assert w.epoch is None and w.epoch_data == [] and w.meta["live"] is True

    vis.reload()
    assert w.refresh() == [1]
    first = w.epoch_data[0]
    assert w.epoch == 1

    vis.reload()
    vis.reload()
    assert w.refresh() == [2, 3]
    assert w.epoch_data[0] is first, "earlier epochs are not rebuilt or re-sent"
    assert [c.epoch for c in w.epoch_data] == [1, 2, 3]
    assert w.epoch == 3, "a live widget jumps to the latest epoch"
    assert w.refresh() == []


def test_refresh_sends_one_comm_message_per_new_child_only(vis):
    """Adding an epoch opens one new child comm; no earlier child sends anything."""
    live_vis = FakeVisualization(n=50, epochs=(1, 2), visible_epochs=1, map_size=16)
    w = DVIWidget(live_vis, live=True)
    sent = []
    old = w.epoch_data[0]
    orig = old.send_state
    old.send_state = lambda *a, **k: sent.append(a) or orig(*a, **k)
    live_vis.reload()
    w.refresh()
    assert sent == []
    assert len(w.epoch_data) == 2


def test_max_points_keeps_a_stratified_sample_with_global_indices():
    vis = FakeVisualization(n=5000, n_classes=5, epochs=(1,), map_size=8)
    w = DVIWidget(vis, max_points=1000)
    shown = np.frombuffer(w.indices, "<u4")
    assert len(shown) == 1000 and w.meta["n_display"] == 1000 and w.meta["n_samples"] == 5000
    assert np.all(np.diff(shown) > 0)
    np.testing.assert_array_equal(np.frombuffer(w.labels, np.uint8), vis.labels[shown])
    pos = np.frombuffer(w.epoch_data[0].positions, "<f4").reshape(-1, 2)
    np.testing.assert_array_equal(pos, vis.embedding(1)[shown])
    full = np.bincount(vis.labels, minlength=5) / 5000
    part = np.bincount(vis.labels[shown], minlength=5) / 1000
    np.testing.assert_allclose(part, full, atol=0.002)
    w.select([4999])  # any global index stays selectable, drawn or not
    assert w.selected == [4999]


def test_stratified_sample_keeps_rare_groups_and_exact_size():
    labels = np.array([0] * 990 + [1] * 10)
    split = np.array(["train"] * 1000)
    idx = stratified_sample(labels, split, 50)
    assert len(idx) == 50
    assert (labels[idx] == 1).sum() >= 1


def test_thumbnail_atlas_is_downsampled_to_its_budget():
    vis = FakeVisualization(n=400, epochs=(1,), map_size=8)
    w = DVIWidget(vis, thumbnail_budget=400 * 4 * 4)
    assert w.meta["thumbnail_shape"] == {"h": 4, "w": 4, "c": 1}
    assert len(w.thumbnails) == 400 * 16


def test_no_thumbnails_sends_no_atlas():
    vis = FakeVisualization(n=100, epochs=(1,), thumbnails=False, map_size=8)
    w = DVIWidget(vis)
    assert w.thumbnails == b"" and w.meta["thumbnail_shape"] is None


def test_probability_quantisation_is_within_a_uint16_step():
    p = np.linspace(0, 1, 1001, dtype=np.float32)
    q = np.frombuffer(encode_probabilities(p), "<u2") / 65535
    assert np.max(np.abs(q - p)) <= 0.5 / 65535 + 1e-7


def test_view_options_are_traits_that_validate(vis):
    w = DVIWidget(vis)
    w.color_by = "correct"
    w.split_filter = "test"
    w.hidden_classes = [1]
    w.only_misclassified = True
    w.show_trails = True
    with pytest.raises(Exception):
        w.color_by = "rainbow"


def test_saved_widget_state_holds_every_epoch(vis):
    """What a notebook saves as widget state reaches each epoch's child model and its buffers."""
    from ipywidgets.embed import dependency_state

    w = DVIWidget(vis)
    state = dependency_state(w, drop_defaults=False)
    children = [s for s in state.values() if s["model_name"] == "WidgetModel" and "background_extent" in s["state"]]
    assert sorted(s["state"]["epoch"] for s in children) == [2, 5, 9]
    for s in children:
        paths = {tuple(b["path"]) for b in s.get("buffers", [])}
        assert {("positions",), ("predictions",), ("background",)} <= paths


# ---------------------------------------------------------------- what the page (or Python) may write (issue 11, item 8)

def test_epoch_none_is_refused_once_epochs_exist(vis):
    w = DVIWidget(vis)
    with pytest.raises(ValueError, match=r"epoch cannot be None; valid epochs: \[2, 5, 9\]"):
        w.epoch = None
    assert w.epoch == 9
    with pytest.raises(ValueError, match="epoch number"):
        w.epoch = True
    w.epoch = np.int64(5)  # a numpy integer is an epoch number too
    assert w.epoch == 5 and type(w.epoch) is int


def test_epoch_none_is_allowed_only_while_a_live_widget_waits():
    vis = FakeVisualization(n=40, epochs=(1,), visible_epochs=0, map_size=8)
    w = DVIWidget(vis, live=True)
    w.epoch = None
    assert w.epoch is None


@pytest.mark.parametrize("bad", [[-1], [10**9], [0, 4], ["1"], [True], [1.5], list(range(5))])
def test_hidden_classes_must_be_valid_class_indices(vis, bad):
    w = DVIWidget(vis)  # 4 classes
    with pytest.raises(ValueError, match="hidden_classes"):
        w.hidden_classes = bad
    assert w.hidden_classes == []


def test_hidden_classes_are_deduplicated_and_a_million_entries_fail_at_once(vis):
    import time

    w = DVIWidget(vis)
    w.hidden_classes = [3, 1, 3]
    assert w.hidden_classes == [1, 3]
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="1,000,000 entries for 4 classes"):
        w.hidden_classes = [0] * 1_000_000
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("bad", [
    {"cx": 1.0}, {"cx": "a", "cy": 0}, {"cx": float("nan"), "cy": 0}, {"cx": 0, "cy": float("inf")},
    {"cx": 0, "cy": 0, "zoom": 0}, {"cx": 0, "cy": 0, "zoom": -2}, {"cx": 0, "cy": 0, "extra": 1},
    {"cx": [1], "cy": 0}, {"cx": True, "cy": 0}, {"cx": 1e300, "cy": 0},
])
def test_view_must_be_empty_or_a_finite_centre_and_zoom(vis, bad):
    w = DVIWidget(vis)
    with pytest.raises(ValueError, match="view"):
        w.view = bad
    assert w.view == {}


def test_a_valid_view_is_kept_and_snapshot_works_with_it(vis, tmp_path):
    w = DVIWidget(vis)
    w.view = {"cx": 1, "cy": -2, "zoom": 3}
    assert w.view == {"cx": 1.0, "cy": -2.0, "zoom": 3.0}
    w.view = {"cx": 0.5, "cy": 0.5}
    assert w.view == {"cx": 0.5, "cy": 0.5, "zoom": 1.0}
    assert w.snapshot(tmp_path / "v.png").stat().st_size > 0


def test_point_size_and_opacity_are_bounded(vis):
    w = DVIWidget(vis)
    w.point_size = 2.5
    w.point_opacity = 0.3
    w.point_opacity = None
    for name, bad in (("point_size", 0), ("point_size", 100), ("point_opacity", 0), ("point_opacity", 2)):
        with pytest.raises(ValueError, match=name):
            setattr(w, name, bad)


class _Sent(list):
    """Collects what the widget sends to the page."""


def _capture_sends(w):
    sent = _Sent()
    w._send = lambda msg, buffers=None: sent.append(msg)
    return sent


@pytest.mark.parametrize("trait,value", [
    ("meta", {"classes": ["<img src=x onerror=alert(1)>"] * 4}),
    ("labels", b"\x00" * 300),
    ("split", b"\x01" * 300),
    ("indices", b""),
    ("thumbnails", b""),
    ("epoch_data", []),
])
def test_data_traits_are_read_only_from_the_page(vis, trait, value):
    w = DVIWidget(vis)
    before = getattr(w, trait)
    sent = _capture_sends(w)
    w.set_state({trait: value})
    assert getattr(w, trait) == before, f"{trait} was overwritten from the page"
    updates = [m for m in sent if m.get("method") == "update"]
    resent = set(updates[-1]["state"]) | {path[0] for path in updates[-1].get("buffer_paths", [])} if updates else set()
    assert trait in resent, "the page is sent Python's value back"


def test_bad_values_from_the_page_are_refused_and_the_page_put_back(vis):
    w = DVIWidget(vis)
    sent = _capture_sends(w)
    w.set_state({"epoch": None, "hidden_classes": [-1, 10**9], "view": {"cx": "x"}, "color_by": "prediction"})
    assert w.epoch == 9 and w.hidden_classes == [] and w.view == {}
    assert w.color_by == "prediction", "the good value in the same message is taken"
    reverted = set().union(*(m["state"] for m in sent if m.get("method") == "update"))
    assert {"epoch", "hidden_classes", "view"} <= reverted


def test_an_epochs_child_model_ignores_page_writes(vis):
    w = DVIWidget(vis)
    child = w.epoch_data[0]
    pos = child.positions
    child._send = lambda msg, buffers=None: None
    child.set_state({"positions": b"\0" * 8, "epoch": 99})
    assert child.positions == pos and child.epoch == 2


def test_export_embeds_python_class_names_not_the_pages(vis, tmp_path):
    w = DVIWidget(vis)
    w._send = lambda msg, buffers=None: None
    w.set_state({"meta": {**w.meta, "classes": ["EVIL"] * 4}})
    text = w.export_html(tmp_path / "x.html").read_text()
    assert "EVIL" not in text and "class 0" in text


def test_select_refuses_a_string_instead_of_reading_its_digits(vis):
    w = DVIWidget(vis)
    with pytest.raises(ValueError, match="select\\(\\) takes sample indices"):
        w.select("123")
    with pytest.raises(ValueError, match="select\\(\\) takes sample indices"):
        w.select(b"12")
    with pytest.raises(ValueError, match="integer"):
        w.select(["1", "2"])
    with pytest.raises(ValueError, match="select\\(\\) takes sample indices"):
        w.select(5)
    assert w.selected == []


def test_select_of_ten_million_fails_fast_with_a_clear_message(vis):
    import time

    w = DVIWidget(vis)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="10,000,000 indices; at most"):
        w.select(range(10**7))
    with pytest.raises(ValueError, match="at most"):
        w.select(iter(range(10**7)))
    assert time.perf_counter() - t0 < 3.0, "fails at once (it took 11.7 s to fail before)"
    w.select(range(0, 300, 3))  # a range within bounds is fine
    assert w.selected == list(range(0, 300, 3))
    w.select(i for i in (5, 2, 5))  # a generator
    assert w.selected == [2, 5]
    w.select({7, 1})
    assert w.selected == [1, 7]


def test_saved_state_keeps_the_statistic_colouring_its_range_filter_and_point_style(small_run, tmp_path):
    """Leftover of the analysis issue: save_state dropped dynamics_filter (and the point style)."""
    w = DVIWidget(small_run)
    w.color_by = "aum"
    w.dynamics_filter = {"column": "aum", "min": 0.1, "max": None}
    w.point_size = 1.5
    w.point_opacity = 0.6
    path = w.save_state(tmp_path / "s.json")
    w2 = DVIWidget.load_state(path, small_run)
    assert w2.color_by == "aum"
    assert w2.dynamics_filter == w.dynamics_filter
    assert (w2.point_size, w2.point_opacity) == (1.5, 0.6)
