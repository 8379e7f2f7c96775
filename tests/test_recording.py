"""Recording: what a capture stores, how epochs are numbered, resume, and that training is left alone."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from engine_support import CLASSES, make_cnn

import dvi_widget as dvi
from dvi_widget.demo import SmallCNN
from dvi_widget.store.rundir import RunDir, load_npz


def stored(path, epoch):
    run = RunDir(path)
    folder = run.epoch_dir(epoch)
    return {**load_npz(folder / "features.npz"), **load_npz(folder / "outputs.npz")}


def expected(model, x):
    with torch.no_grad():
        was = model.training
        model.eval()
        h = model.features(x)
        z = model.fc(h)
        model.train(was)
    return h.numpy(), z.argmax(1).numpy(), torch.softmax(z, 1).numpy()


@pytest.fixture
def rec_args(mnist_tiny):
    x, labels, split, images = mnist_tiny
    return dict(inputs=x, labels=labels, classes=CLASSES, split=split)


def test_capture_stores_features_predictions_and_probabilities_of_every_sample(tmp_path, rec_args, trained_cnn):
    x = rec_args["inputs"]
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        assert rec.capture(trained_cnn, features=trained_cnn.features, head=trained_cnn.fc) == 1
    s = stored(tmp_path / "r", 1)
    h, pred, prob = expected(trained_cnn, x)
    np.testing.assert_allclose(s["features"], h, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(s["predictions"], pred)
    np.testing.assert_allclose(s["probabilities"], prob, atol=1e-5)
    assert s["features"].dtype == np.float32 and s["probabilities"].shape == (len(x), 10)


def test_epochs_number_from_one_and_continue_after_an_explicit_epoch(tmp_path, rec_args, trained_cnn):
    m = trained_cnn
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        assert rec.capture(m, features=m.features, head=m.fc) == 1
        assert rec.capture(m, features=m.features, head=m.fc) == 2
        assert rec.capture(m, features=m.features, head=m.fc, epoch=7) == 7
        assert rec.capture(m, features=m.features, head=m.fc) == 8
        assert rec.epochs == [1, 2, 7, 8]
    assert RunDir(tmp_path / "r").recorded_epochs() == [1, 2, 7, 8]


def test_features_by_layer_name_equal_features_by_callable(tmp_path, rec_args, trained_cnn):
    m = trained_cnn
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc)
        rec.capture(m, features="features", head=m.fc)
    a, b = stored(tmp_path / "r", 1), stored(tmp_path / "r", 2)
    np.testing.assert_allclose(a["features"], b["features"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a["predictions"], b["predictions"])


def test_layer_name_hook_is_removed_after_capture(tmp_path, rec_args, trained_cnn):
    m = trained_cnn
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        rec.capture(m, features="features", head=m.fc)
    assert len(m.features._forward_hooks) == 0


def test_dataset_inputs_record_the_same_features_as_a_tensor(tmp_path, rec_args, trained_cnn):
    m = trained_cnn
    ds = torch.utils.data.TensorDataset(rec_args["inputs"], torch.from_numpy(rec_args["labels"]))
    with dvi.Recorder(tmp_path / "r", **{**rec_args, "inputs": ds}) as rec:
        rec.capture(m, features=m.features, head=m.fc)
    h, _, _ = expected(m, rec_args["inputs"])
    np.testing.assert_allclose(stored(tmp_path / "r", 1)["features"], h, rtol=1e-4, atol=1e-5)


def test_features_only_capture_needs_no_inputs_or_model(tmp_path, digits_head):
    X, y, head = digits_head
    with dvi.Recorder(tmp_path / "r", labels=y) as rec:
        assert rec.capture(features=X, head=head, epoch=5) == 5
        assert rec.capture(features=torch.from_numpy(X), head=head) == 6
    s = stored(tmp_path / "r", 5)
    np.testing.assert_array_equal(s["features"], X)
    np.testing.assert_array_equal(s["predictions"], head(torch.from_numpy(X)).argmax(1).numpy())
    run = RunDir(tmp_path / "r")
    assert run.classes == [str(i) for i in range(10)]
    assert run.thumbnails() is None
    assert len(s["boundary"]) > 0 and s["boundary"].shape[1] == X.shape[1]


def test_capture_checkpoints_reads_saved_state_dicts_and_their_epoch_numbers(tmp_path, rec_args):
    x = rec_args["inputs"]
    models = {3: make_cnn(3), 5: make_cnn(5)}
    files = []
    for e, m in models.items():
        f = tmp_path / f"ckpt_epoch{e}.pt"
        torch.save(m.state_dict(), f)
        files.append(f)
    torch.save({"model_state_dict": models[5].state_dict(), "epoch": 5}, tmp_path / "wrapped.pt")
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        assert rec.capture_checkpoints(SmallCNN, files, features="features", head="fc") == [3, 5]
        assert rec.capture_checkpoints(SmallCNN, [tmp_path / "wrapped.pt"], features=lambda m: m.features,
                                       head=lambda m: m.fc, epochs=[9]) == [9]
    for e, m in [(3, models[3]), (5, models[5]), (9, models[5])]:
        h, pred, _ = expected(m, x)
        s = stored(tmp_path / "r", e)
        np.testing.assert_allclose(s["features"], h, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(s["predictions"], pred)


def test_close_and_context_manager_stop_further_captures(tmp_path, rec_args, trained_cnn):
    m = trained_cnn
    rec = dvi.Recorder(tmp_path / "a", **rec_args)
    rec.capture(m, features=m.features, head=m.fc)
    rec.close()
    with pytest.raises(dvi.DVIError, match="closed"):
        rec.capture(m, features=m.features, head=m.fc)
    with dvi.Recorder(tmp_path / "b", **rec_args) as rec2:
        rec2.capture(m, features=m.features, head=m.fc)
    with pytest.raises(dvi.DVIError, match="closed"):
        rec2.capture(m, features=m.features, head=m.fc)


def test_an_existing_run_is_resumed_and_overwrite_starts_afresh(tmp_path, rec_args, trained_cnn):
    m = trained_cnn
    path = tmp_path / "r"
    with dvi.Recorder(path, **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc)
        rec.capture(m, features=m.features, head=m.fc)
    before = stored(path, 1)["features"]
    with dvi.Recorder(path, **rec_args) as rec:
        assert rec.epochs == [1, 2]
        assert rec.capture(m, features=m.features, head=m.fc) == 3
    np.testing.assert_array_equal(stored(path, 1)["features"], before)
    with dvi.Recorder(path, overwrite=True, **rec_args) as rec:
        assert rec.epochs == []
        assert rec.capture(m, features=m.features, head=m.fc) == 1
    assert RunDir(path).recorded_epochs() == [1]


def test_resume_refuses_other_sizes_labels_or_classes(tmp_path, rec_args, trained_cnn):
    path = tmp_path / "r"
    with dvi.Recorder(path, **rec_args) as rec:
        rec.capture(trained_cnn, features=trained_cnn.features, head=trained_cnn.fc)
    x, labels = rec_args["inputs"], rec_args["labels"]
    with pytest.raises(dvi.DVIError, match=r"N=300"):
        dvi.Recorder(path, inputs=x[:-1], labels=labels[:-1], classes=CLASSES)
    other = labels.copy()
    other[[0, 1]] = (other[[0, 1]] + 1) % 10
    with pytest.raises(dvi.DVIError, match="other labels"):
        dvi.Recorder(path, inputs=x, labels=other, classes=CLASSES)
    with pytest.raises(dvi.DVIError, match="classes"):
        dvi.Recorder(path, inputs=x, labels=labels, classes=[f"digit {c}" for c in CLASSES])
    assert RunDir(path).recorded_epochs() == [1], "a refused resume leaves the run alone"


def test_recording_restores_every_module_mode_including_mixed_modes(tmp_path, rec_args):
    m = make_cnn(1)
    m.train()
    m.features[0].eval()          # a frozen first conv, as in fine-tuning
    m.fc.eval()
    modes = {name: mod.training for name, mod in m.named_modules()}
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc)
        rec.capture(m, features="features", head=m.fc)
    assert {name: mod.training for name, mod in m.named_modules()} == modes
    m.eval()
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc)
    assert not any(mod.training for mod in m.modules())


def test_recording_leaves_global_random_state_alone(tmp_path, rec_args):
    m = make_cnn(2)
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    t_state, n_state, p_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc)
    assert torch.equal(torch.get_rng_state(), t_state)
    after = np.random.get_state()
    assert after[0] == n_state[0] and np.array_equal(after[1], n_state[1]) and after[2:] == n_state[2:]
    assert random.getstate() == p_state


def test_recording_leaves_gradients_and_requires_grad_alone(tmp_path, rec_args):
    m = make_cnn(3)
    x, labels = rec_args["inputs"], rec_args["labels"]
    m.features[0].weight.requires_grad_(False)
    loss = torch.nn.functional.cross_entropy(m(x[:32]), torch.from_numpy(labels[:32]))
    loss.backward()
    grads = {n: (p.grad.clone() if p.grad is not None else None) for n, p in m.named_parameters()}
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    weights = {n: p.detach().clone() for n, p in m.named_parameters()}
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc)
    assert torch.is_grad_enabled()
    for n, p in m.named_parameters():
        assert p.requires_grad == flags[n], n
        assert torch.equal(p.detach(), weights[n]), n
        if grads[n] is None:
            assert p.grad is None, n
        else:
            assert torch.equal(p.grad, grads[n]), n


def test_thumbnails_are_made_from_image_inputs(tmp_path, rec_args, mnist_tiny, trained_cnn):
    images = mnist_tiny[3]
    with dvi.Recorder(tmp_path / "r", **rec_args) as rec:   # normalised float inputs, no images=
        rec.capture(trained_cnn, features=trained_cnn.features, head=trained_cnn.fc)
    thumbs = RunDir(tmp_path / "r").thumbnails()
    assert thumbs.dtype == np.uint8 and thumbs.shape == images.shape
    # the inputs are a linear map of the images: thumbnails rescale them back to 0..255
    assert np.abs(thumbs.astype(int) - images.astype(int)).max() <= 1


def test_given_images_are_stored_as_thumbnails(tmp_path, rec_args, mnist_tiny):
    images = mnist_tiny[3]
    inverted = 255 - images
    dvi.Recorder(tmp_path / "r", images=inverted, **rec_args)
    np.testing.assert_array_equal(RunDir(tmp_path / "r").thumbnails(), inverted)


def test_large_images_are_shrunk_to_at_most_64_pixels(tmp_path):
    x = torch.rand(20, 3, 96, 128)
    labels = np.arange(20) % 2
    dvi.Recorder(tmp_path / "r", inputs=x, labels=labels)
    thumbs = RunDir(tmp_path / "r").thumbnails()
    assert thumbs.dtype == np.uint8 and thumbs.shape == (20, 48, 64, 3)


def test_non_image_inputs_get_no_thumbnails(tmp_path):
    dvi.Recorder(tmp_path / "r", inputs=torch.rand(20, 5), labels=np.arange(20) % 2)
    assert RunDir(tmp_path / "r").thumbnails() is None


# ---- nothing recorded is lost without being asked -----------------------------------------------
def _features_run(path, digits_head, epochs=(1,)):
    X, y, head = digits_head
    with dvi.Recorder(path, labels=y[:200], progress=False) as rec:
        for e in epochs:
            rec.capture(features=X[:200], head=head, epoch=e)
    return y[:200]


def test_overwrite_refuses_a_folder_that_only_has_a_meta_json(tmp_path, digits_head):
    X, y, head = digits_head
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "meta.json").write_text('{"name": "my experiment"}')
    (folder / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(dvi.DVIError, match="overwrite=True refused.*not a dvi_widget run"):
        dvi.Recorder(folder, labels=y[:200], overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "results.csv"]
    assert (folder / "results.csv").read_text() == "a,b\n1,2\n"


def test_overwrite_refuses_a_run_folder_that_also_holds_the_users_files(tmp_path, digits_head):
    X, y, head = digits_head
    path = tmp_path / "run"
    labels = _features_run(path, digits_head)
    (path / "notes.txt").write_text("do not lose me")
    (path / "epochs" / "000001" / "plot.png").write_bytes(b"\x89PNG")
    with pytest.raises(dvi.DVIError, match="entries a dvi_widget run never has") as e:
        dvi.Recorder(path, labels=labels, overwrite=True)
    assert "notes.txt" in str(e.value) and "plot.png" in str(e.value)
    assert (path / "notes.txt").read_text() == "do not lose me"
    assert RunDir(path).recorded_epochs() == [1], "nothing was removed"


def test_overwrite_of_a_run_says_what_it_removes(tmp_path, digits_head, capsys):
    path = tmp_path / "run"
    labels = _features_run(path, digits_head, epochs=(1, 2))
    X, y, head = digits_head
    with dvi.Recorder(path, labels=labels, overwrite=True, progress=False) as rec:
        assert rec.epochs == []
    err = capsys.readouterr().err
    assert f"removed the run at {path}" in err and "2 recorded" in err and "epochs" in err


def test_recording_an_epoch_number_again_is_an_error_unless_replace(tmp_path, digits_head):
    X, y, head = digits_head
    path = tmp_path / "run"
    _features_run(path, digits_head, epochs=(1, 2))
    before = stored(path, 2)["features"]
    with dvi.Recorder(path, labels=y[:200], progress=False) as rec:
        with pytest.raises(dvi.DVIError, match="epoch 2 is already recorded.*replace=True"):
            rec.capture(features=X[:200] * 2, head=head, epoch=2)
        np.testing.assert_array_equal(stored(path, 2)["features"], before)
        assert rec.capture(features=X[:200] * 2, head=head, epoch=2, replace=True) == 2
    np.testing.assert_allclose(stored(path, 2)["features"], before * 2)


def test_checkpoints_with_taken_epoch_numbers_are_refused_before_any_is_read(tmp_path, digits_head, rec_args):
    m = make_cnn()
    files = []
    for e in (1, 2):
        files.append(tmp_path / f"ckpt_{e}.pt")
        torch.save(m.state_dict(), files[-1])
    with dvi.Recorder(tmp_path / "run", progress=False, **rec_args) as rec:
        rec.capture(m, features=m.features, head=m.fc, epoch=2)
        calls = []

        def build():
            calls.append(1)
            return make_cnn()
        with pytest.raises(dvi.DVIError, match=r"epochs \[2\] are already recorded"):
            rec.capture_checkpoints(build, files, features="features", head="fc")
        assert calls == []


# ---- progress off a terminal --------------------------------------------------------------------
PROGRESS_SCRIPT = r"""
import sys, numpy as np, torch
torch.set_num_threads(1)
import dvi_widget as dvi
torch.manual_seed(0)
x = torch.randn(120, 8)
labels = np.arange(120) % 3
feat = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU())
head = torch.nn.Linear(16, 3)
progress = sys.argv[2] == "on"
with dvi.Recorder(sys.argv[1], inputs=x, labels=labels, progress=progress) as rec:
    for e in (1, 2, 3):
        rec.capture(features=feat, head=head)
dvi.fit(sys.argv[1], progress=progress, steps_first=20, steps=10, grid=16, batch_size=64)
"""


@pytest.mark.parametrize("mode", ["on", "off"])
def test_progress_in_a_log_is_one_plain_line_per_epoch_and_off_means_silent(tmp_path, mode):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run([sys.executable, "-c", PROGRESS_SCRIPT, str(tmp_path / "run"), mode], env=env,
                       capture_output=True, text=True, timeout=300)   # stderr is a pipe: not a terminal
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout + r.stderr
    if mode == "off":
        assert out == "", "progress=False reaches every stage"
        return
    assert "\r" not in out and "\x1b[" not in out, "no cursor codes in a log"
    lines = out.strip().splitlines()
    for e in (1, 2, 3):
        assert sum(line.startswith(f"epoch {e}: features: 120 samples in") for line in lines) == 1, lines
        assert sum(line.startswith(f"fit epoch {e}: ") for line in lines) == 1, lines
    assert all(" in " in line and line.endswith(" s") for line in lines), lines


def test_tqdm_disable_silences_progress(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", PROGRESS_SCRIPT, str(tmp_path / "run"), "on"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout + r.stderr == ""
