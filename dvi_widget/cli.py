"""The ``dvi-widget`` command: ``demo`` trains, records and fits the bundled MNIST run; ``fit`` fits a run."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dvi-widget", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small CNN on the bundled MNIST digits, record, fit, print figures")
    demo.add_argument("--out", default="runs/mnist-demo", help="run directory (default: runs/mnist-demo)")
    demo.add_argument("--epochs", type=int, default=8)
    demo.add_argument("--train", type=int, default=8000, help="training samples (default 8000)")
    demo.add_argument("--test", type=int, default=2000, help="test samples (default 2000)")
    demo.add_argument("--preset", default="default", choices=["default", "layout", "parametric", "reference"])
    fitp = sub.add_parser("fit", help="fit the recorded epochs of a run directory not yet fitted")
    fitp.add_argument("run")
    fitp.add_argument("--preset", default=None, choices=["default", "layout", "parametric", "reference"],
                      help="fit options (default: those the run was fitted with, else 'default')")
    fitp.add_argument("--refit", action="store_true", help="fit every epoch again")
    fitp.add_argument("--device", default="auto")
    exp = sub.add_parser("export", help="write one self-contained offline HTML page of a fitted run")
    exp.add_argument("run", help="fitted run directory (or a saved Visualization)")
    exp.add_argument("out", help="the HTML file to write, e.g. map.html")
    exp.add_argument("--thumbnails", default="all", choices=["all", "selected", "none"],
                     help="sample images in the page (default: all)")
    exp.add_argument("--epoch", type=int, default=None, help="epoch shown first (default: the last)")
    exp.add_argument("--max-points", type=int, default=None, help="draw a stratified sample of this many points")
    exp.add_argument("--title", default=None)
    args = parser.parse_args(argv)

    from .errors import DVIError
    try:
        if args.command == "demo":
            from .demo import run_demo
            run_demo(args.out, epochs=args.epochs, n_train=args.train, n_test=args.test,
                     fit_options={"preset": args.preset})
        elif args.command == "fit":
            from .demo import format_table
            from .engine.fitting import fit
            # no --preset: new epochs are fitted the way the earlier ones were
            vis = fit(args.run, preset=args.preset, refit=args.refit, device=args.device)
            print(format_table(vis))
            print(f"stab_spearman over the run: {vis.summary['stab_spearman']:.3f}")
        elif args.command == "export":
            import os

            from .outputs.export import export_run
            opts = {"thumbnails": args.thumbnails, "epoch": args.epoch, "title": args.title}
            if args.max_points is not None:
                opts["max_points"] = args.max_points
            out = export_run(args.run, args.out, **opts)
            print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB): opens offline in any browser")
    except DVIError as e:
        print(f"dvi-widget: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
