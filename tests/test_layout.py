"""The layout engine (the default): neighbourhoods as umap-learn keeps them, stable across epochs,
predictions kept where the points are shown, and an encoder that places features where they are shown."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_support import record_features

import dvi_widget as dvi
from dvi_widget.engine.knn import exact_knn
from dvi_widget.engine.layout import jaccard_overlap, optimize_layout
from dvi_widget.engine.metrics import overlap_rate

LAYOUT_TEST_FIT = dict(steps_first=300, steps=120)   # the default map grid (256): map_consistency is measured on it


def nn_rate(features: np.ndarray, embedding: np.ndarray, k: int = 15) -> float:
    """Mean share of each point's k high-D neighbours among its k 2-D neighbours (self excluded)."""
    high, _ = exact_knn(torch.from_numpy(features), k)
    low, _ = exact_knn(torch.from_numpy(np.ascontiguousarray(embedding, np.float32)), k)
    return float(overlap_rate(high, low).mean())


HELD_OUT = 150


@pytest.fixture(scope="module")
def digits_fit(tmp_path_factory, digits_head):
    """The default engine on 1,647 of the 1,797 digits (a well-trained linear head), one epoch.

    The last 150 digits are never recorded: they are the new features of the held-out test.
    """
    X, y, head = digits_head
    path = record_features(tmp_path_factory.mktemp("layout") / "digits", [(1, X[:-HELD_OUT])], y[:-HELD_OUT], head)
    return dvi.fit(path, progress=False, **LAYOUT_TEST_FIT), X[:-HELD_OUT]


def test_the_layout_keeps_neighbourhoods_as_well_as_umap_learn(digits_fit):
    umap = pytest.importorskip("umap")
    vis, X = digits_fit
    ours = nn_rate(X, vis.embedding(1))
    assert vis.metrics[1]["nn_rate@15"] == pytest.approx(ours, abs=1e-6), "the metric is this figure"
    theirs = nn_rate(X, umap.UMAP(n_neighbors=15, random_state=0).fit_transform(X))
    print(f"nn_rate@15: dvi_widget {ours:.3f}, umap-learn {theirs:.3f}")
    assert ours >= 0.9 * theirs, (ours, theirs)


def test_predictions_survive_the_inverse_at_the_shown_positions(digits_fit):
    vis, _ = digits_fit
    back = vis.inverse(1, vis.embedding(1))                     # decode where the widget shows each point
    with torch.no_grad():
        kept = vis.head(1)(torch.from_numpy(back)).argmax(1).numpy() == vis.predictions(1)
    assert vis.metrics[1]["ppr"] == pytest.approx(kept.mean(), abs=1e-9)
    assert kept.mean() >= 0.99, kept.mean()
    # the decision map agrees with the points drawn on it
    assert vis.metrics[1]["map_consistency"] >= 0.99


def test_project_lands_where_the_points_are_shown(digits_fit):
    vis, X = digits_fit
    shown, placed = vis.embedding(1), vis.project(1, X)
    xmin, xmax, ymin, ymax = vis.background_extent(1)
    err = np.linalg.norm(placed - shown, axis=1) / max(xmax - xmin, ymax - ymin)
    m = vis.metrics[1]
    assert m["project_error/median"] == pytest.approx(np.median(err), rel=1e-4, abs=1e-7)
    assert m["project_error/p95"] == pytest.approx(np.percentile(err, 95), rel=1e-4, abs=1e-7)
    # project interpolates the encoder's residuals (engine/extension.py): a recorded sample's own
    # features land where it is shown
    assert np.median(err) < 1e-4 and np.percentile(err, 95) < 1e-3, (np.median(err), np.percentile(err, 95))
    # the figures that say what that rests on: the encoder alone, and each sample left out
    # (reduced steps here; an encoder that ignored its input would land ~0.3 of the extent away)
    assert m["project_error_encoder/median"] < 0.03 and m["project_error_encoder/p95"] < 0.08, m
    assert m["project_error_heldout/median"] < 0.03 and m["project_error_heldout/p95"] < 0.08, m


def test_project_places_new_features_among_their_high_d_neighbours(digits_fit, digits_head):
    """Features never recorded land where their nearest recorded samples (in feature space) are shown."""
    vis, X = digits_fit
    new = digits_head[0][-HELD_OUT:]
    placed, shown = vis.project(1, new), vis.embedding(1)
    side = max(np.ptp(shown, axis=0))
    near, _ = exact_knn(torch.from_numpy(X), 15, queries=torch.from_numpy(new))
    to_neighbours = np.linalg.norm(placed[:, None, :] - shown[near.numpy()], axis=2).min(1) / side
    to_random = np.linalg.norm(placed - shown[np.random.default_rng(0).permutation(len(X))[:len(new)]], axis=1) / side
    print(f"new features: nearest high-D neighbour shown {np.median(to_neighbours):.4f} of the extent away "
          f"(a random sample: {np.median(to_random):.3f})")
    assert np.median(to_neighbours) < 0.04 and np.percentile(to_neighbours, 90) < 0.15
    assert np.median(to_random) > 10 * np.median(to_neighbours)
    # a new feature halfway between two recorded samples lands between their shown positions, not on either
    mid = vis.project(1, (X[:1] + X[1:2]) / 2)[0]
    a, b = shown[0], shown[1]
    assert np.linalg.norm(mid - a) > 1e-6 * side and np.linalg.norm(mid - b) > 1e-6 * side


def test_warm_started_epochs_move_samples_whose_neighbourhoods_changed_more(tmp_path, digits_head):
    X, y, head = digits_head
    X, y = X[:600], y[:600]
    rng = np.random.default_rng(0)
    changed = rng.choice(len(X), 90, replace=False)
    X2 = X.copy()
    X2[changed] = X[rng.permutation(changed)]        # these samples take other samples' features
    X2 = (X2 + 0.005 * rng.standard_normal(X2.shape)).astype(np.float32)
    path = record_features(tmp_path / "warm", [(1, X), (2, X2)], y, head)
    vis = dvi.fit(path, progress=False, steps_first=150, steps=60, grid=32)
    side = np.ptp(vis.embedding(1), axis=0).max()
    moved = np.linalg.norm(vis.embedding(2) - vis.embedding(1), axis=1) / side
    stable = np.setdiff1d(np.arange(len(X)), changed)
    print(f"median move / side: stable {np.median(moved[stable]):.4f}, changed {np.median(moved[changed]):.4f}")
    assert np.median(moved[stable]) < 0.25 * np.median(moved[changed])
    assert np.median(moved[stable]) < 0.05, "one coordinate frame: a warm epoch does not redraw the map"


def test_alignment_pull_holds_points_in_proportion_to_their_overlap():
    """The layout SGD alone: with no edges at all, only the pull acts, and a weight-0 point stays free."""
    gen = torch.Generator().manual_seed(0)
    start = torch.rand((4, 2), generator=gen) * 10
    anchor = torch.zeros((4, 2))
    none = torch.zeros((0, 2), dtype=torch.long)
    out = optimize_layout(start, none, torch.zeros(0), 20, 1.577, 0.895, generator=gen,
                          negative_sample_rate=0, anchor=anchor, anchor_weight=torch.tensor([0.0, 0.0, 0.2, 0.6]))
    d = out.norm(dim=1)
    assert torch.allclose(out[:2], start[:2]), "no pull, no edges: no move"
    assert d[3] < d[2] < start[2].norm()


def test_jaccard_overlap_of_knn_sets():
    a = torch.tensor([[1, 2, 3], [4, 5, 6]])
    b = torch.tensor([[3, 2, 1], [4, 7, 8]])
    assert jaccard_overlap(a, b).tolist() == pytest.approx([1.0, 1 / 5])


def test_the_new_default_and_the_parametric_preset_differ_as_documented(tmp_path, digits_head):
    X, y, head = digits_head
    path = record_features(tmp_path / "p", [(1, X[:300])], y[:300], head)
    vis = dvi.fit(path, progress=False, preset="parametric", steps_first=40, grid=16)
    assert vis.metrics[1]["project_error/p95"] == pytest.approx(0.0, abs=1e-6), "parametric: shown = encode(h)"
    np.testing.assert_allclose(vis.embedding(1), vis.project(1, X[:300]), atol=1e-5)


def _digits_graph():
    from sklearn.datasets import load_digits
    from dvi_widget.engine.complexes import build_complex
    from dvi_widget.engine.config import umap_ab
    from dvi_widget.engine.layout import pca_init
    X = torch.from_numpy(load_digits().data.astype(np.float32))
    cx = build_complex(X, torch.zeros((0, X.shape[1])), 15)
    return X, cx, umap_ab(1.0, 0.1), pca_init(X, torch.Generator().manual_seed(0))


def test_the_compiled_cpu_passes_keep_neighbourhoods_as_the_torch_passes_do():
    """engine/sgd.py (numba, the CPU default) and the torch passes (the GPU's) follow the same rules."""
    X, cx, (a, b), start = _digits_graph()
    rates = {}
    for kernel in ("torch", "numba"):
        pos = optimize_layout(start, cx.edges, cx.weights, 120, a, b, generator=torch.Generator().manual_seed(1),
                              negative_sample_rate=8, lr=0.5, kernel=kernel)
        low, _ = exact_knn(pos, 15)
        rates[kernel] = float(overlap_rate(cx.knn, low).mean())
    print(f"nn_rate@15 after 120 passes: {rates}")
    assert rates["numba"] > 0.45, "the start (PCA) has about 0.2: the passes must do the work"
    assert abs(rates["numba"] - rates["torch"]) < 0.02, rates


def test_the_compiled_passes_give_the_same_bytes_on_any_thread_count():
    """A fixed seed fixes the layout (tests/test_ray.py compares whole fits byte for byte)."""
    X, cx, (a, b), start = _digits_graph()
    anchor, pull = start.clone(), torch.linspace(0, 1, len(start))
    rate = torch.linspace(0.3, 1, len(start))
    before = torch.get_num_threads()
    try:
        for sequential in (False, True):
            out = []
            for threads, seed in ((1, 5), (2, 5), (1, 6)):
                torch.set_num_threads(threads)
                out.append(optimize_layout(start, cx.edges, cx.weights, 30, a, b, generator=torch.Generator().manual_seed(seed),
                                           anchor=anchor, anchor_weight=pull, point_rate=rate, kernel="numba",
                                           sequential=sequential))
                assert torch.get_num_threads() == threads, "the fit's thread count survives numba"
            assert torch.equal(out[0], out[1]), sequential
            assert not torch.equal(out[0], out[2]), "another seed, other negatives"
    finally:
        torch.set_num_threads(before)


def test_sequential_passes_keep_more_neighbours_than_synchronous_ones_in_as_many_passes():
    """The CPU default (layout_updates="sequential") is why fewer passes suffice."""
    X, cx, (a, b), start = _digits_graph()
    rates = {}
    for sequential in (False, True):
        got = []
        for seed in (1, 2):
            pos = optimize_layout(start, cx.edges, cx.weights, 60, a, b, generator=torch.Generator().manual_seed(seed),
                                  negative_sample_rate=8, lr=0.5, kernel="numba", sequential=sequential)
            low, _ = exact_knn(pos, 15)
            got.append(float(overlap_rate(cx.knn, low).mean()))
        rates[sequential] = np.mean(got)
    print(f"nn_rate@15 after 60 passes: synchronous {rates[False]:.4f}, sequential {rates[True]:.4f}")
    assert rates[True] > rates[False] + 0.005, rates


STABLE_TEST_FIT = dict(steps_first=100, steps=40, layout_epochs_first=100, layout_epochs=48, grid=128)


def drifting_digits(X: np.ndarray, epochs: int, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    """Features that drift as a network's do while it trains: mostly one affine map of the whole
    feature space per epoch (they grow and turn), plus a few samples that take other samples'
    features (their neighbourhoods change) and a little noise."""
    rng = np.random.default_rng(seed)
    out, H = [], X.astype(np.float32)
    for e in range(1, epochs + 1):
        if e > 1:
            A = np.eye(X.shape[1]) * 1.25 + 0.08 * rng.standard_normal((X.shape[1], X.shape[1]))
            H = H @ A.astype(np.float32) + 0.05 * rng.standard_normal(X.shape[1]).astype(np.float32)
            swap = rng.choice(len(X), len(X) // 20, replace=False)
            H[swap] = H[rng.permutation(swap)]
            H = (H + 0.01 * rng.standard_normal(H.shape)).astype(np.float32)
        out.append((e, H.copy()))
    return out


@pytest.fixture(scope="module")
def drifting_run(tmp_path_factory, digits_head):
    X, y, head = digits_head
    feats = drifting_digits(X[:500], 3)
    base = tmp_path_factory.mktemp("stable")
    return {name: record_features(base / name, feats, y[:500], head) for name in ("default", "stable", "split")}


def test_the_stable_preset_moves_samples_as_far_as_their_features_moved(drifting_run):
    """stab_spearman (2-D step vs feature step, pooled over epoch pairs) reaches 0.85 with the stable
    preset, where the default layout, which moves a sample when its neighbourhood changes, does not;
    neighbourhoods are kept nearly as well."""
    default = dvi.fit(drifting_run["default"], progress=False, **STABLE_TEST_FIT)
    stable = dvi.fit(drifting_run["stable"], preset="stable", progress=False, **STABLE_TEST_FIT)
    s_def, s_st = default.summary["stab_spearman"], stable.summary["stab_spearman"]
    nn_def = [default.metrics[e]["nn_rate@15"] for e in default.epochs]
    nn_st = [stable.metrics[e]["nn_rate@15"] for e in stable.epochs]
    print(f"stab_spearman default {s_def:.3f}, stable {s_st:.3f}; nn_rate default {nn_def}, stable {nn_st}")
    assert s_st >= 0.85
    assert s_st > s_def + 0.2
    assert min(b / a for a, b in zip(nn_def, nn_st)) > 0.8
    assert min(m["ppr"] for m in stable.metrics.values()) >= 0.99


def test_the_stable_presets_step_scale_is_one_for_the_run_across_fit_calls(tmp_path, digits_head):
    """Epochs fitted one call at a time (as a training loop does) share the 2-D move per unit of
    feature move: the first warm epoch sets it, model.json carries it to the next call."""
    import json
    X, y, head = digits_head
    feats = drifting_digits(X[:300], 3, seed=1)
    path = record_features(tmp_path / "split", feats[:2], y[:300], head)
    dvi.fit(path, preset="stable", progress=False, **STABLE_TEST_FIT)
    record_features(path, feats[2:], y[:300], head)          # the run goes on: epoch 3
    vis = dvi.fit(path, progress=False)                      # the stored options: stable
    scales = [json.loads((path / "fits" / f"{e:06d}" / "model.json").read_text()).get("step_scale")
              for e in vis.epochs]
    assert vis.epochs == [1, 2, 3]
    assert scales[0] is None and scales[1] > 0 and scales[2] == scales[1], scales
    slopes = []                                  # 2-D move per unit of feature move, in each epoch pair
    for e in (2, 3):
        f = np.load(path / "fits" / f"{e:06d}" / "fit.npz")
        slopes.append(float(np.median(f["low_step"] / f["high_step"])))
    print(f"2-D move per feature move: {slopes}; stab_spearman {vis.summary['stab_spearman']:.3f}")
    assert slopes[1] == pytest.approx(slopes[0], rel=0.15)


@pytest.mark.parametrize("bad", [-1.0, "big", float("nan")])
def test_a_model_json_with_a_bad_step_scale_is_named(small_run_copy, bad):
    import json
    f = small_run_copy / "fits" / "000002" / "model.json"
    d = json.loads(f.read_text())
    d["step_scale"] = bad
    f.write_text(json.dumps(d))
    with pytest.raises(dvi.RunFileError, match="step_scale") as e:
        dvi.Visualization(small_run_copy).project(2, np.zeros((1, 64), np.float32))
    assert str(f) in str(e.value)


def test_a_warm_epoch_keeps_the_layouts_size_and_frame():
    """The SGD's repulsion keeps spreading a warm-started layout; the map must not swell or turn from
    epoch to epoch (align_similarity removes the drift), and samples whose neighbourhoods changed
    do not steer the alignment."""
    from dvi_widget.engine.projection import align_similarity
    rng = np.random.default_rng(0)
    prev = torch.from_numpy(rng.normal(size=(300, 2)).astype(np.float32))
    theta = 0.3
    rot = torch.tensor([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], dtype=torch.float32)

    def drift(p):                                   # swollen, turned, shifted
        return 1.3 * p @ rot.T + torch.tensor([5.0, -2.0])
    assert (align_similarity(drift(prev), prev, torch.ones(300)) - prev).abs().max() < 1e-4
    now = prev.clone()
    now[:30] += 4.0                                 # these samples moved to new neighbourhoods
    weight = torch.ones(300)
    weight[:30] = 0
    back = align_similarity(drift(now), prev, weight)
    assert (back[30:] - prev[30:]).abs().max() < 1e-4, "the others are back where they were"
    assert (back[:30] - now[:30]).abs().max() < 1e-4, "the moved ones keep their moves"
    local = 0.01 * torch.from_numpy(rng.normal(size=(300, 2)).astype(np.float32))
    back = align_similarity(drift(prev + local), prev, torch.ones(300))
    assert (back - prev).norm(dim=1).median() < 1.5 * local.norm(dim=1).median(), "local moves are not inflated"


def test_renumbered_passes_return_every_point_in_the_callers_order():
    """The compiled passes run on vertices renumbered for memory locality; what comes back is in the
    caller's order, with each point's own anchor, pull and rate. No edges and no negatives: a point
    with pull 1 lands on its anchor, a free one stays where it started."""
    gen = torch.Generator().manual_seed(0)
    start = torch.rand((500, 2), generator=gen) * 10
    anchor = torch.rand((500, 2), generator=gen) * 10
    pull = (torch.arange(500) % 3 == 0).float()
    none = torch.zeros((0, 2), dtype=torch.long)
    for sequential in (False, True):
        out = optimize_layout(start, none, torch.zeros(0), 5, 1.577, 0.895, generator=gen, negative_sample_rate=0,
                              anchor=anchor, anchor_weight=pull, kernel="numba", sequential=sequential)
        held = pull == 1
        assert torch.allclose(out[held], anchor[held], atol=1e-5), sequential
        assert torch.equal(out[~held], start[~held]), sequential


def test_renumbered_passes_pull_each_edges_own_two_ends_together():
    """Each edge joins its own head and tail after the renumbering: 200 pairs (2m, 2m + 1), no
    negatives, come together; a point with rate 0 (frozen) does not move, whichever its new number."""
    gen = torch.Generator().manual_seed(0)
    start = torch.rand((400, 2), generator=gen) * 10
    pairs = torch.stack([torch.arange(0, 400, 2), torch.arange(1, 400, 2)], 1)
    edges = torch.cat([pairs, pairs.flip(1)])
    rate = torch.ones(400)
    rate[::7] = 0.0
    for sequential in (False, True):
        out = optimize_layout(start, edges, torch.ones(len(edges)), 30, 1.577, 0.895, generator=gen,
                              negative_sample_rate=0, point_rate=rate, kernel="numba", sequential=sequential)
        apart = (out[0::2] - out[1::2]).norm(dim=1)
        was = (start[0::2] - start[1::2]).norm(dim=1)
        assert float(apart.median()) < 0.1 * float(was.median()), (sequential, apart.median(), was.median())
        assert torch.equal(out[::7], start[::7]), "rate 0: frozen"


def test_the_locality_order_keeps_neighbourhoods_and_brings_each_edges_ends_close_in_memory():
    """sgd.run_passes with and without the renumbering (the same rules, other random draws): as many
    neighbours kept, on 1 or 2 threads the same bytes; and in the new order an edge's two ends are
    close in the vertex order (what makes a pass faster at 100,000 points)."""
    from dvi_widget.engine import sgd
    X, cx, (a, b), start = _digits_graph()
    w = cx.weights.numpy()
    keep = w >= w.max() / 60
    edges, eps = cx.edges.numpy()[keep], (w.max() / w[keep]).astype(np.float64)
    kw = dict(negative_sample_rate=8, lr=0.5, gamma=1.0, anchor=None, pull=None, rate=None, sequential=True)
    rates = {}
    for renumber in (False, True):
        got = []
        for seed in (1, 2):
            pos = sgd.run_passes(start.numpy(), edges[:, 0], edges[:, 1], eps, 60, a, b, seed=seed, threads=1,
                                 renumber=renumber, **kw)
            low, _ = exact_knn(torch.from_numpy(pos), 15)
            got.append(float(overlap_rate(cx.knn, low).mean()))
        rates[renumber] = np.mean(got)
    print(f"nn_rate@15 after 60 sequential passes: vertex order as given {rates[False]:.4f}, renumbered {rates[True]:.4f}")
    assert rates[True] > 0.45 and abs(rates[True] - rates[False]) < 0.015, rates
    two = sgd.run_passes(start.numpy(), edges[:, 0], edges[:, 1], eps, 20, a, b, seed=3, threads=2, **kw)
    one = sgd.run_passes(start.numpy(), edges[:, 0], edges[:, 1], eps, 20, a, b, seed=3, threads=1, **kw)
    assert np.array_equal(one, two)
    order = sgd.locality_order(start.numpy())
    assert np.array_equal(np.sort(order), np.arange(len(start))), "a permutation"
    new_id = np.empty_like(order)
    new_id[order] = np.arange(len(order))
    gap_before = np.median(np.abs(edges[:, 0] - edges[:, 1]))
    gap_after = np.median(np.abs(new_id[edges[:, 0]] - new_id[edges[:, 1]]))
    assert gap_after < 0.25 * gap_before, (gap_before, gap_after)


def test_the_compiled_power_and_random_draws_follow_their_definitions():
    """sgd._pow is x ** b to near float32 accuracy (within 1.5e-6 max(1, b)) over the distances a layout sees, and the
    negative samples are uniform over the vertices (chi-square over 10 bins)."""
    import numba
    from dvi_widget.engine import sgd

    @numba.njit
    def powers(x, b):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = sgd._pow(x[i], np.float32(b))
        return out

    x = (10.0 ** np.random.default_rng(0).uniform(-6, 6, 200_000)).astype(np.float32)
    for b in (0.5, 0.79, 0.895, 1.0, 1.4, 1.9):
        exact = x.astype(np.float64) ** np.float64(np.float32(b))
        assert np.abs(powers(x, b) / exact - 1).max() < 1.5e-6 * max(1.0, b), b

    @numba.njit
    def draws(V, n):
        out = np.empty(n, np.int64)
        for e in range(n):
            out[e] = (sgd._mix32((e * 0x9E3779B9 + 17) & 0xFFFFFFFF) * V) >> 32
        return out

    k = draws(1000, 100_000)
    assert k.min() >= 0 and k.max() < 1000
    counts = np.bincount(k // 100, minlength=10)
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 30, counts                                   # 9 dof: p < 0.001 beyond 27.9
