"""Screenshots of the widget in JupyterLab 4 (headless Chromium), light and dark theme.

    python benchmarks/screenshots.py --run RUN_DIR [--out benchmarks/pictures]

Writes `map-10k-light.png`, `map-10k-dark.png` (the fitted run RUN_DIR, e.g. the demo's 10,000
MNIST digits: `dvi-widget demo --out runs/mnist-demo`) and `map-50k-light.png`,
`map-50k-dark.png` (50,000 synthetic points, tests/browser/fake_vis.py, as the widget benchmark
uses), each the widget's area at a 1400 x 1000 viewport, device pixel ratio 1, saved as
palette PNGs to stay small. The themes are switched the way a user does (JupyterLab's
theme command), and each shot waits until the widget has drawn after the switch.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from harness import lab_session, notebook_page  # noqa: E402

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=pathlib.Path, required=True, help="a fitted run directory (the 10k picture)")
    ap.add_argument("--out", type=pathlib.Path, default=REPO / "benchmarks" / "pictures")
    ap.add_argument("--synthetic", type=int, default=50_000, help="points of the synthetic picture")
    args = ap.parse_args()
    from PIL import Image

    args.out.mkdir(parents=True, exist_ok=True)
    cells = {
        "10k": ("import dvi_widget as dvi\n"
                f"vis = dvi.Visualization({str(args.run.resolve())!r})\n"
                "w = dvi.DVIWidget(vis)\n"
                "w"),
        f"{args.synthetic // 1000}k": ("from fake_vis import FakeVisualization\n"
                                        "from dvi_widget.widget.widget import DVIWidget\n"
                                        f"w = DVIWidget(FakeVisualization(n={args.synthetic}, epochs=range(1, 3), map_size=256))\n"
                                        "w"),
    }
    written = []
    with lab_session("dvi-shots-") as (server, browser):
        for name, code in cells.items():
            page = notebook_page(browser, server, f"shot-{name}.ipynb", [code], workspace=f"shot{name}",
                                 viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
            root = page.locator(".dvi-root").first
            root.wait_for(timeout=120_000)
            for theme, label in THEMES.items():
                page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{ theme: {label!r} }})")
                page.wait_for_function(
                    f"() => document.body.dataset.jpThemeName === {label!r}", timeout=60_000)
                page.wait_for_timeout(1500)  # the theme's CSS applies, the widget redraws
                page.wait_for_function(
                    "() => { const r = document.querySelector('.dvi-root'); return r && r.dataset.drawnEpoch; }",
                    timeout=60_000)
                page.mouse.move(5, 5)  # no hover ring in the picture
                path = args.out / f"map-{name}-{theme}.png"
                root.screenshot(path=str(path))
                img = Image.open(path).convert("RGB")
                img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                    path, optimize=True)
                written.append(path)
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', { theme: 'JupyterLab Light' })")
            page.close()
    for path in written:
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  {path.stat().st_size // 1024} kB")


if __name__ == "__main__":
    main()
