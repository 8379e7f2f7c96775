"""Two runs side by side: two DVIWidgets whose epoch, selection and (optionally) view are linked.

``dvi.compare(vis_a, vis_b)`` checks that both runs hold the same samples (else a DVIError
naming N and the label hashes, before any widget is built), builds one widget per run and
links them through the kernel:

- epoch: by epoch number; when the other run lacks that epoch it shows its nearest one and
  the header says so;
- selection: the same sample indices in both (a lasso in either selects in both);
- view (``link_view=True``, the default): pan and zoom follow each other. Two runs have their
  own coordinate frames, so a linked view shows the same region of the screen, not of the data;
  turn it off with ``link_view=False`` when the layouts differ.

The links run in the kernel (Python observers), so they pause while a cell keeps the kernel busy.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets

from ..analysis.compare import EpochAlignment, align_epochs, check_same_samples

__all__ = ["Comparison", "WidgetLink", "compare", "link"]


class WidgetLink:
    """Keeps two DVIWidgets' epoch, selection and optionally view in step; ``unlink()`` stops it."""

    def __init__(self, a: Any, b: Any, *, view: bool = True, alignment: EpochAlignment | None = None,
                 on_note=None):
        check_same_samples(a.vis, b.vis, same_labels=False)
        self.a, self.b = a, b
        self.alignment = alignment or EpochAlignment(a.epochs, b.epochs)
        self.note = ""
        self._on_note = on_note
        self._busy = False
        self._handlers = []
        names = ["epoch", "selected"] + (["view"] if view else [])
        for src, dst, side in ((a, b, "a"), (b, a, "b")):
            for name in names:
                handler = self._make(dst, name, side)
                src.observe(handler, names=name)
                self._handlers.append((src, handler, name))

    def _make(self, dst, name: str, side: str):
        def handler(change):
            if self._busy:
                return
            self._busy = True
            try:
                if name == "epoch":
                    self._follow_epoch(dst, change["new"], side)
                elif getattr(dst, name) != change["new"]:
                    setattr(dst, name, change["new"])
            finally:
                self._busy = False
        return handler

    def _follow_epoch(self, dst, epoch, side: str) -> None:
        if epoch is None:
            return
        self.alignment = EpochAlignment(self.a.epochs, self.b.epochs)  # live runs gain epochs
        target, exact = self.alignment.partner(int(epoch), side)
        other = "B" if side == "a" else "A"
        self.note = "" if exact or target is None else f"run {other} has no epoch {epoch}: showing its epoch {target}"
        if target is not None and dst.epoch != target:
            dst.epoch = target
        if self._on_note:
            self._on_note(self.note)

    def unlink(self) -> None:
        for src, handler, name in self._handlers:
            src.unobserve(handler, names=name)
        self._handlers = []


def link(a: Any, b: Any, *, view: bool = True) -> WidgetLink:
    """Link two widgets of runs of the same samples (see the module docstring)."""
    return WidgetLink(a, b, view=view)


class Comparison(ipywidgets.VBox):
    """Two runs' widgets side by side under one header; ``.a``, ``.b``, ``.link``, ``.alignment``."""

    def __init__(self, a: Any, b: Any, *, names: tuple[str, str], link_view: bool = True):
        self.a, self.b = a, b
        self.names = names
        self.header = ipywidgets.HTML()
        self.alignment = EpochAlignment(a.epochs, b.epochs)
        self.link = WidgetLink(a, b, view=link_view, alignment=self.alignment, on_note=self._show_note)
        titles = ipywidgets.HBox([ipywidgets.HTML(f"<b>A: {html.escape(names[0])}</b>",
                                                  layout=ipywidgets.Layout(flex="1 1 0")),
                                  ipywidgets.HTML(f"<b>B: {html.escape(names[1])}</b>",
                                                  layout=ipywidgets.Layout(flex="1 1 0"))])
        pair = ipywidgets.HBox([a, b])
        for w in (a, b):
            w.layout = ipywidgets.Layout(flex="1 1 0", min_width="0")
        super().__init__([self.header, titles, pair])
        self._show_note("")

    def _show_note(self, note: str) -> None:
        base = self.link.alignment.note() if hasattr(self, "link") else self.alignment.note()
        text = f"{base}. {note}" if note else base
        self.header.value = f"<span class='dvi-compare-note'>{html.escape(text)}</span>"

    @property
    def note(self) -> str:
        """What the header says: the epoch alignment and, when one run lacks the epoch shown, which it shows."""
        return html.unescape(self.header.value.split(">", 1)[1].rsplit("<", 1)[0])


def compare(vis_a: Any, vis_b: Any, *, link_view: bool = True, same_labels: bool = True,
            names: tuple[str, str] | None = None, **widget_options: Any) -> Comparison:
    """Two runs of the same samples side by side, epoch, selection and view linked.

    Refuses runs of different samples (N or label hash differ) with a DVIError naming both, before
    any widget is built; ``same_labels=False`` accepts the same N with other labels (clean
    against noisy labels). ``widget_options`` go to both ``DVIWidget``s.
    """
    check_same_samples(vis_a, vis_b, same_labels=same_labels)
    align_epochs(vis_a, vis_b)
    from .widget import DVIWidget
    a = DVIWidget(vis_a, **widget_options)
    b = DVIWidget(vis_b, **widget_options)
    if names is None:
        names = tuple(str(getattr(getattr(v, "path", None), "name", "") or f"run {s}")
                      for v, s in ((vis_a, "A"), (vis_b, "B")))
    comp = Comparison(a, b, names=names, link_view=link_view)
    common = comp.alignment.common
    if common and a.epoch not in common:
        a.epoch = common[-1]     # open both on the last epoch they share
    elif b.epoch != comp.link.alignment.partner(a.epoch, "a")[0]:
        comp.link._follow_epoch(b, a.epoch, "a")
    return comp
