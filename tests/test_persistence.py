"""Saving and loading a Visualization, and the ``dvi-widget`` command line."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import dvi_widget as dvi
from dvi_widget.cli import main


def test_save_and_load_round_trip(small_run, tmp_path):
    dest = small_run.save(tmp_path / "saved")
    vis = dvi.Visualization.load(dest)
    assert vis.epochs == small_run.epochs
    assert vis.classes == small_run.classes
    np.testing.assert_array_equal(vis.labels, small_run.labels)
    np.testing.assert_array_equal(vis.split, small_run.split)
    assert vis.metrics == small_run.metrics
    assert vis.summary == small_run.summary
    assert vis.extent == small_run.extent
    np.testing.assert_array_equal(vis.thumbnails([0, 5, 999]), small_run.thumbnails([0, 5, 999]))
    for e in small_run.epochs:
        np.testing.assert_array_equal(vis.embedding(e), small_run.embedding(e))
        np.testing.assert_array_equal(vis.background(e), small_run.background(e))
        assert vis.background_extent(e) == small_run.background_extent(e)
        np.testing.assert_array_equal(vis.predictions(e), small_run.predictions(e))
        np.testing.assert_array_equal(vis.probabilities(e), small_run.probabilities(e))
        h = small_run.features(e)[:50]
        # a saved copy has no recorded features, so project is the encoder alone there, without the
        # correction interpolated from the recorded samples (Visualization.save documents it)
        xmin, xmax, ymin, ymax = vis.background_extent(e)
        gap = np.linalg.norm(vis.project(e, h) - small_run.project(e, h), axis=1) / max(xmax - xmin, ymax - ymin)
        assert np.median(gap) <= 2 * small_run.metrics[e]["project_error_encoder/median"] + 1e-6
        pts = small_run.embedding(e)[:50]
        np.testing.assert_array_equal(vis.inverse(e, pts), small_run.inverse(e, pts))


def test_a_saved_visualization_leaves_out_the_high_dimensional_features(small_run, tmp_path):
    dest = small_run.save(tmp_path / "saved")
    assert not list(dest.rglob("features.npz"))
    with pytest.raises(dvi.RunFileError, match="features.npz"):
        dvi.Visualization.load(dest).features(1)


def test_save_refuses_a_non_empty_folder_and_load_a_non_run(small_run, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    with pytest.raises(dvi.DVIError, match="not empty"):
        small_run.save(tmp_path / "busy")
    with pytest.raises(dvi.RunFileError, match="meta.json"):
        dvi.Visualization.load(tmp_path / "busy")


def test_cli_fit_prints_the_table_of_a_fitted_run(small_run_copy, capsys):
    assert main(["fit", str(small_run_copy)]) == 0
    out = capsys.readouterr().out
    assert "ppr/train" in out and "stab_spearman over the run" in out
    rows = [line.split()[0] for line in out.splitlines()[1:] if line.split() and line.split()[0].isdigit()]
    assert rows == ["1", "2", "3"]


def test_cli_fit_fits_a_new_epoch_with_the_runs_options(small_run_copy, capsys):
    shutil.rmtree(small_run_copy / "fits" / "000003")
    assert main(["fit", str(small_run_copy)]) == 0
    assert dvi.Visualization(small_run_copy).epochs == [1, 2, 3]


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "absent")]) == 2
    assert "dvi-widget: error: no run directory at" in capsys.readouterr().err


# ---- save() never follows links ----------------------------------------------------------------
def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".saving" in p.name]


def test_save_refuses_a_link_to_a_private_file_and_copies_nothing(small_run_copy, tmp_path):
    private = tmp_path / "secret.txt"
    private.write_text("password=hunter2")
    target = small_run_copy / "fits" / "000002" / "metrics.json"
    target.unlink()
    target.symlink_to(private)
    vis = dvi.Visualization(small_run_copy)
    with pytest.raises(dvi.DVIError, match="symbolic link") as e:
        vis.save(tmp_path / "saved")
    assert str(target) in str(e.value)
    assert not (tmp_path / "saved").exists()
    assert _leftovers(tmp_path) == []
    assert not any(b"hunter2" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != private
                   and not p.is_symlink())


def test_save_refuses_a_link_loop_and_leaves_no_saving_folder(small_run_copy, tmp_path):
    loop = small_run_copy / "fits" / "000001" / "loop.json"
    loop.symlink_to(loop)
    vis = dvi.Visualization(small_run_copy)
    with pytest.raises(dvi.DVIError, match="symbolic link"):
        vis.save(tmp_path / "saved")
    assert not (tmp_path / "saved").exists() and _leftovers(tmp_path) == []


def test_a_saved_copy_holds_only_plain_files_and_reopens(small_run, tmp_path):
    dest = small_run.save(tmp_path / "saved")
    assert not [p for p in dest.rglob("*") if p.is_symlink()]
    vis = dvi.Visualization.load(dest)
    assert vis.epochs == small_run.epochs
    assert not (dest / ".writer.lock").exists() and not (dest / ".writer.json").exists()
