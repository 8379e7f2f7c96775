"""The dvi-widget command.

  demo     train a small CNN on the bundled MNIST digits, record it, fit it, print the
           figures and write an offline page (map.html); re-running resumes
  fit      fit the recorded epochs of a run directory that are not fitted yet
  export   write one self-contained offline HTML page of a fitted run

Every error is one line naming the problem (exit status 2), never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MNIST_SIZE = 10_000   # digits bundled with the package (dvi_widget/data/mnist10k.npz)


def _version() -> str:
    from . import __version__
    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvi-widget", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"dvi-widget {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,fit,export}")
    demo = sub.add_parser("demo", help="train a small CNN on the bundled MNIST digits, record, fit, print figures, "
                                       "write map.html")
    demo.add_argument("--out", default="runs/mnist-demo",
                      help="run directory (default: runs/mnist-demo); an existing demo run there is resumed")
    demo.add_argument("--epochs", type=int, default=8, help="training epochs to record (default 8)")
    demo.add_argument("--train", type=int, default=8000, help="training samples (default 8000)")
    demo.add_argument("--test", type=int, default=2000, help="test samples (default 2000)")
    demo.add_argument("--preset", default="default", choices=["default", "layout", "stable", "parametric", "reference"],
                      help="fit options: the default engine (layout), the layout with steps held to the features' "
                           "(stable), the parametric engine, or DVI's reference")
    demo.add_argument("--fresh", action="store_true",
                      help="start afresh: remove the demo run already in --out (only ever a dvi_widget run)")
    fitp = sub.add_parser("fit", help="fit the recorded epochs of a run directory not yet fitted")
    fitp.add_argument("run", help="the run directory a dvi.Recorder wrote")
    fitp.add_argument("--preset", default=None, choices=["default", "layout", "stable", "parametric", "reference"],
                      help="fit options (default: those the run was fitted with, else 'default')")
    fitp.add_argument("--refit", action="store_true", help="fit every epoch again (needed to change the options)")
    fitp.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1, ...")
    fitp.add_argument("--executor", default="local", choices=["local", "ray"],
                      help="local (this process, default) or ray (stages as Ray tasks; pip install 'dvi_widget[ray]')")
    fitp.add_argument("--ray-address", default=None,
                      help="with --executor ray: the cluster (ray.init address; default RAY_ADDRESS, else a local one)")
    exp = sub.add_parser("export", help="write one self-contained offline HTML page of a fitted run")
    exp.add_argument("run", help="fitted run directory (or a saved Visualization)")
    exp.add_argument("out", help="the HTML file to write, e.g. map.html")
    exp.add_argument("--thumbnails", default="all", choices=["all", "selected", "none"],
                     help="sample images in the page (default: all)")
    exp.add_argument("--epoch", type=int, default=None, help="epoch shown first (default: the last)")
    exp.add_argument("--max-points", type=int, default=None, help="draw a stratified sample of this many points")
    exp.add_argument("--title", default=None, help="the page's title (default: the run's folder name)")
    return parser


def check_new_folder(path: str | os.PathLike) -> Path:
    """A folder that exists or can be created: its nearest existing ancestor is a writable folder."""
    from .errors import DVIError
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise DVIError(f"cannot use {p} as a run directory: it is a file")
        return p
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DVIError(f"cannot create {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DVIError(f"cannot create {p}: no permission to write in {parent}")
    return p


def _demo(args) -> None:
    from .demo import run_demo
    from .errors import DVIError
    if args.epochs < 1:
        raise DVIError(f"--epochs must be at least 1, got {args.epochs}")
    if args.train < 20 or args.test < 0:
        raise DVIError(f"--train must be at least 20 and --test at least 0, got {args.train} and {args.test}")
    if args.train + args.test > MNIST_SIZE:
        raise DVIError(f"the bundled MNIST set has {MNIST_SIZE:,} digits; --train {args.train} + --test {args.test} "
                       f"asks for {args.train + args.test:,}")
    check_new_folder(args.out)
    run_demo(args.out, epochs=args.epochs, n_train=args.train, n_test=args.test,
             fit_options={"preset": args.preset}, fresh=args.fresh)


def _fit(args) -> None:
    from .demo import format_table
    from .engine.fitting import fit
    from .errors import DVIError
    try:
        # no --preset: new epochs are fitted the way the earlier ones were
        vis = fit(args.run, preset=args.preset, refit=args.refit, device=args.device, executor=args.executor,
                  ray_address=args.ray_address)
    except DVIError as e:
        if "refit=True" not in str(e):
            raise
        # the library's advice names the Python argument; here it is the flag
        raise DVIError(str(e).replace("refit=True", "--refit")) from None
    print(format_table(vis))
    print(f"stab_spearman over the run: {vis.summary['stab_spearman']:.3f}")


def _export(args) -> None:
    from .errors import DVIError
    from .outputs.export import export_run
    from .results import Visualization
    from .store.atomic import check_target
    out = check_target(args.out)   # before the long work: a bad path fails at once
    if args.max_points is not None and args.max_points < 1:
        raise DVIError(f"--max-points must be at least 1, got {args.max_points}")
    if args.epoch is not None:
        vis = Visualization.load(args.run)
        if args.epoch not in vis.epochs:
            from .errors import unknown_epoch
            raise unknown_epoch(args.epoch, vis.epochs)
    opts = {"thumbnails": args.thumbnails, "epoch": args.epoch, "title": args.title}
    if args.max_points is not None:
        opts["max_points"] = args.max_points
    written = export_run(args.run, out, **opts)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB): opens offline in any browser")   # a Path or a URL


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .errors import DVIError
    try:
        {"demo": _demo, "fit": _fit, "export": _export}[args.command](args)
    except DVIError as e:
        print(f"dvi-widget: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dvi-widget: interrupted; finished epochs are kept and the next run resumes", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
