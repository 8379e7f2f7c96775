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
