"""Fault injection for the Ray tests, run in every Ray worker of the test cluster (its setup hook).

A test arms a kill by creating ``$DVI_TEST_KILL_DIR/arm-<stage>-<epoch>``; the first worker that
runs that stage for that epoch writes ``killed-<stage>-<epoch>`` and dies on the spot (os._exit,
as a killed or crashed worker would: no cleanup, no exception). Later attempts run normally.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

STAGES = ("prepare_epoch", "project_epoch", "finish_epoch", "capture")


def _epoch_of(stage: str, args) -> int:
    if stage == "prepare_epoch":
        return int(args[1])
    if stage == "capture":
        return int(args[4])      # _record(self, model, features, head, epoch)
    return int(args[0].epoch if stage == "project_epoch" else args[1].epoch)


def _killing(stage: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        folder = Path(os.environ["DVI_TEST_KILL_DIR"])
        epoch = _epoch_of(stage, args)
        if (folder / f"arm-{stage}-{epoch}").exists() and not (folder / f"killed-{stage}-{epoch}").exists():
            (folder / f"killed-{stage}-{epoch}").write_text(str(os.getpid()))
            os._exit(1)
        return fn(*args, **kw)
    return wrapper


def arm_kills() -> None:
    """Ray worker setup hook: wrap the stages so an armed one kills its worker once."""
    from dvi_widget.engine import fitting
    from dvi_widget.record import recorder
    for stage in STAGES[:3]:
        setattr(fitting, stage, _killing(stage, getattr(fitting, stage)))
    recorder._CaptureJob._record = _killing("capture", recorder._CaptureJob._record)
