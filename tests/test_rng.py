"""engine/rng.py: a fit's random draws are made on its device, all seeded from its one CPU generator."""
from __future__ import annotations

import pytest
import torch

from dvi_widget.engine import layout
from dvi_widget.engine.rng import on_device


def test_a_cpu_fit_draws_from_its_own_generator_exactly_as_before():
    g = torch.Generator().manual_seed(7)
    assert on_device(g, "cpu") is g
    assert on_device(g, torch.device("cpu")) is g


def test_a_device_without_a_generator_of_its_own_draws_on_the_host_and_leaves_the_stream_alone():
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    assert on_device(g, "meta") is g          # torch has no generator on the meta device
    assert torch.equal(g.get_state(), state)


def test_the_torch_layout_passes_draw_their_negatives_on_the_positions_device(monkeypatch):
    asked = []

    def record(generator, device):
        asked.append(torch.device(device))
        return on_device(generator, device)
    monkeypatch.setattr(layout, "on_device", record)
    g = torch.Generator().manual_seed(0)
    pos = torch.rand((60, 2), generator=g) * 10
    edges = torch.tensor([[i, (i + 1) % 60] for i in range(60)] + [[(i + 1) % 60, i] for i in range(60)])
    layout.optimize_layout(pos, edges, torch.ones(len(edges)), 5, 1.6, 0.9, generator=g, kernel="torch")
    assert asked == [pos.device]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_draws_stay_on_the_gpu_and_repeat_for_the_same_seed():
    a = on_device(torch.Generator().manual_seed(3), "cuda")
    b = on_device(torch.Generator().manual_seed(3), "cuda")
    assert a.device.type == "cuda"
    x = torch.randint(0, 1000, (100,), generator=a, device=a.device)
    y = torch.randint(0, 1000, (100,), generator=b, device=b.device)
    assert x.device.type == "cuda" and torch.equal(x, y)
