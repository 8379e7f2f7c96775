"""Progress off a terminal: one plain line per task, with the unit's plural spelled right."""
import io

from dvi_widget.progress import Progress, plural


def test_a_task_off_a_terminal_prints_one_plain_line_when_it_ends(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    out = io.StringIO()
    with Progress(3, "layout epoch 2", unit="pass", stream=out) as bar:
        bar.update(3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("layout epoch 2: 3 passes in ")
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_tqdm_disable_silences_it(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = io.StringIO()
    with Progress(3, "fit epoch 1", unit="step", stream=out) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_plural():
    assert [plural("step", 1), plural("step", 2), plural("pass", 2), plural("epoch", 0)] == \
        ["step", "steps", "passes", "epochs"]
