"""The projection: encoder and embedding agree, the decoder keeps predictions, the temporal term holds still."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from engine_support import record_features

import dvi_widget as dvi


def round_trip_predictions(vis, epoch, features=None):
    """Classes the head gives to decode(z), through the public API: z = the shown positions
    (``features=None``, what ppr measures) or encode(features)."""
    z = vis.embedding(epoch) if features is None else vis.project(epoch, features)
    back = vis.inverse(epoch, z)
    with torch.no_grad():
        return vis.head(epoch)(torch.from_numpy(back)).argmax(1).numpy()


def test_the_encoder_places_each_epochs_features_near_where_they_are_shown(small_run):
    """The default engine lays points out, then fits the encoder to the layout: project_error measures the gap."""
    for e in small_run.epochs:
        emb = small_run.embedding(e)
        assert emb.shape == (small_run.n, 2) and emb.dtype == np.float32
        proj = small_run.project(e, small_run.features(e))
        assert proj.dtype == np.float32
        xmin, xmax, ymin, ymax = small_run.background_extent(e)
        err = np.linalg.norm(proj - emb, axis=1) / max(xmax - xmin, ymax - ymin)
        assert small_run.metrics[e]["project_error/median"] == pytest.approx(np.median(err), rel=1e-4, abs=1e-7)
        assert small_run.metrics[e]["project_error/p95"] == pytest.approx(np.percentile(err, 95), rel=1e-4, abs=1e-7)
        # reduced steps on a barely trained CNN; an encoder that ignored its input would land ~0.3 away
        assert np.median(err) < 0.06, f"epoch {e}: median project error {np.median(err):.4f} of the extent"


def test_project_and_inverse_shapes(small_run):
    e = small_run.epochs[0]
    h = small_run.features(e)
    pts = small_run.project(e, h[:7])
    assert pts.shape == (7, 2)
    back = small_run.inverse(e, pts)
    assert back.shape == (7, h.shape[1]) and back.dtype == np.float32
    assert small_run.inverse(e, np.zeros((0, 2), np.float32)).shape == (0, h.shape[1])


def test_each_epoch_has_its_own_projection(small_run):
    a, b = small_run.epochs[0], small_run.epochs[-1]
    h = small_run.features(b)
    assert not np.allclose(small_run.project(a, h), small_run.project(b, h))


def test_decoder_round_trip_keeps_most_predictions_on_the_small_run(small_run):
    """Reduced fit steps on a barely trained CNN: well above what a position-blind decoder keeps."""
    rng = np.random.default_rng(0)
    for e in small_run.epochs:
        pred = small_run.predictions(e)
        rt = round_trip_predictions(small_run, e)
        ppr = (rt == pred).mean()
        assert ppr == pytest.approx(small_run.metrics[e]["ppr"], abs=0.01)
        # a decoder that ignored where a point is would agree about as often as a shuffled pairing does
        blind = (rt[rng.permutation(len(rt))] == pred).mean()
        assert ppr >= 0.35 and ppr >= blind + 0.25, f"epoch {e}: ppr {ppr:.3f}, position-blind {blind:.3f}"


def test_decoder_round_trip_keeps_predictions_on_a_well_trained_head(tmp_path, digits_head):
    """Digits features and a 99%-accurate linear head: nearly every prediction survives."""
    X, y, head = digits_head
    path = record_features(tmp_path / "digits", [(1, X)], y, head)
    vis = dvi.fit(path, progress=False, preset="parametric", steps_first=200, grid=32)
    rt = round_trip_predictions(vis, 1, X)
    ppr = (rt == vis.predictions(1)).mean()
    assert ppr >= 0.9, f"ppr {ppr:.3f}"
    assert vis.metrics[1]["ppr"] == pytest.approx(ppr, abs=0.005)
    # and the layout keeps neighbourhoods far better than chance (15/1797 ~ 0.008)
    assert vis.metrics[1]["nn_rate@15"] > 0.15


def test_parametric_temporal_terms_hold_samples_whose_neighbourhoods_did_not_change(tmp_path, digits_head):
    X, y, head = digits_head
    X, y = X[:400], y[:400]
    rng = np.random.default_rng(1)
    X2 = (X + 1e-3 * rng.standard_normal(X.shape)).astype(np.float32)   # neighbourhoods unchanged
    base = record_features(tmp_path / "base", [(1, X), (2, X2)], y, head)
    moved = {}
    first = {}
    # both temporal terms, each alone: DVI's weight drift and the step term
    for name, opts in {"none": dict(temporal_weight=0.0, step_weight=0.0),
                       "drift": dict(temporal_weight=30.0, step_weight=0.0),
                       "step": dict(temporal_weight=0.0, step_weight=3.0)}.items():
        path = tmp_path / name
        shutil.copytree(base, path)
        vis = dvi.fit(path, progress=False, preset="parametric", steps_first=100, steps=80, batch_size=256, grid=16,
                      **opts)
        e1, e2 = vis.embedding(1), vis.embedding(2)
        side = np.ptp(e1, axis=0).max()
        moved[name] = float(np.linalg.norm(e2 - e1, axis=1).mean() / side)
        first[name] = e1
    np.testing.assert_allclose(first["none"], first["drift"], atol=1e-4,
                               err_msg="epoch 1 does not depend on the temporal weights")
    print("relative movement", moved)
    assert moved["drift"] < 0.5 * moved["none"], moved
    assert moved["step"] < 0.5 * moved["none"], moved


def test_the_decoders_fourier_input_is_stored_and_a_model_without_it_still_loads(tmp_path):
    """The stored model carries its Fourier frequencies; a model.json from before them (no "fourier") loads
    as the plain decoder it was."""
    from dvi_widget.engine.vismodel import VisModel, load_vismodel
    from dvi_widget.store.rundir import save_npz, write_json
    z = torch.randn(20, 2)
    for fourier, desc_of in ((16, lambda m: m.describe()),
                             (0, lambda m: {k: v for k, v in m.describe().items() if k != "fourier"})):
        torch.manual_seed(0)
        model = VisModel(5, 8, 2, fourier, 3.0).eval()
        folder = tmp_path / f"f{fourier}"
        folder.mkdir()
        save_npz(folder / "model.npz", **model.arrays())
        write_json(folder / "model.json", desc_of(model))
        back = load_vismodel(folder)
        assert back.fourier == fourier
        with torch.no_grad():
            torch.testing.assert_close(back.decode(z), model.decode(z))


def test_carving_gives_failing_samples_their_class_where_they_lie_so_fewer_must_move():
    """Samples predicted otherwise than their 2-D neighbours fail the decoder after its usual steps;
    carve_failures' extra steps aimed at them give more of them their class where they are shown (so
    place_failures moves fewer away from their neighbours), and stop at once when none fails."""
    from dataclasses import replace

    from dvi_widget.engine.config import FitConfig
    from dvi_widget.engine.training import carve_failures, fit_to_layout, inverse_failures
    from dvi_widget.engine.vismodel import VisModel

    g = torch.Generator().manual_seed(0)
    n, per = 600, 200
    centres2d = torch.tensor([[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]])
    centres_h = torch.randn((3, 8), generator=g) * 4
    cls = torch.arange(n) // per
    pos = centres2d[cls] + 0.7 * torch.randn((n, 2), generator=g)
    h = centres_h[cls] + torch.randn((n, 8), generator=g)
    odd = torch.arange(0, per, 10)            # every 10th sample of cluster 0 has class 1's features
    h[odd] = centres_h[1] + torch.randn((len(odd), 8), generator=g)
    head = torch.nn.Linear(8, 3)
    with torch.no_grad():
        head.weight.copy_(centres_h)
        head.bias.copy_(-0.5 * (centres_h ** 2).sum(1))
    teacher = torch.softmax(head(h), 1).detach()
    pred = teacher.argmax(1)
    assert (pred[odd] == 1).all()

    cfg = replace(FitConfig(), width=32, decoder_fourier=32, batch_size=256, focus_batch=128)
    torch.manual_seed(0)
    model = VisModel(8, cfg.width, cfg.depth, cfg.decoder_fourier, cfg.fourier_scale)
    model.set_normalisation(h)
    model.set_output_frame(pos)
    fit_to_layout(model, head, h, pos, teacher, n, cfg, 80, g, encoder=False)
    before = len(inverse_failures(model, head, pos, pred))
    assert before >= 10, "some samples fail after the usual steps"
    carve_failures(model, head, h, pos, teacher, n, cfg, 200, g)
    after = len(inverse_failures(model, head, pos, pred))
    assert after <= before // 4, (before, after)
    if after == 0:
        assert carve_failures(model, head, h, pos, teacher, n, cfg, 200, g) == [], "nothing fails: no step"


def test_without_prediction_terms_or_focus_there_is_nothing_to_carve():
    from dataclasses import replace

    from dvi_widget.engine.config import FitConfig
    from dvi_widget.engine.training import carve_failures
    from dvi_widget.engine.vismodel import VisModel
    model = VisModel(4, 8, 1, 4, 3.0)
    before = [p.clone() for p in model.parameters()]
    h, pos = torch.randn(20, 4), torch.randn(20, 2)
    teacher = torch.softmax(torch.randn(20, 3), 1)
    for cfg in (replace(FitConfig(), focus_batch=0), replace(FitConfig(), pred_weight=0.0, pred_hard_weight=0.0)):
        assert carve_failures(model, torch.nn.Linear(4, 3), h, pos, teacher, 20, cfg, 50, torch.Generator()) == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "no step was taken"
