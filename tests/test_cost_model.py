"""benchmarks/cost_model.py: the schedule it extrapolates with, and that it runs on the committed results."""
import json

from benchmark_support import load_benchmark


def load_cost_model():
    return load_benchmark("cost_model")


STAGES = {"capture": 2.0, "complex": 3.0, "layout": 10.0, "maps": 2.0, "map": 1.0, "metrics": 2.0, "cold_extra": 0.0}


def test_one_worker_does_all_the_work_in_turn():
    cm = load_cost_model()
    s = cm.schedule(STAGES, epochs=200, workers=1, overhead_s=0.0, chain_transfer_s=0.0)
    assert abs(s["hours"] * 3600 - 200 * 20.0) < 1e-6
    assert s["bound"] == "total work / workers"


def test_many_workers_are_bounded_by_the_sequential_chain():
    cm = load_cost_model()
    s = cm.schedule(STAGES, epochs=200, workers=64, overhead_s=0.0, chain_transfer_s=0.0)
    # 200 links of layout + maps one after another, plus one epoch's independent stages
    assert abs(s["hours"] * 3600 - (200 * 12.0 + 8.0)) < 1e-6
    assert s["bound"] == "the chain (E x link)"
    more = cm.schedule(STAGES, epochs=200, workers=1000, overhead_s=0.0, chain_transfer_s=0.0)
    assert more["hours"] == s["hours"]            # no number of workers removes the floor


def test_growth_exponent_recovers_a_power_law():
    cm = load_cost_model()
    assert abs(cm._exp(1.0, 4.0, 10_000, 20_000) - 2.0) < 1e-9
    assert abs(cm._exp(3.0, 9.0, 10_000, 30_000) - 1.0) < 1e-9


def test_runs_on_the_committed_results(tmp_path):
    cm = load_cost_model()
    out = tmp_path / "cost.md"
    assert cm.main(["--out", str(out)]) == 0
    text = out.read_text()
    assert "| 64 |" in text and "chain" in text
    res = json.loads(out.with_suffix(".json").read_text())
    # the chain floor never exceeds what one worker takes for the whole run
    for row in res["rows"]:
        assert row["cpu"]["chain_floor_h"] <= res["rows"][0]["cpu"]["hours"] + 1e-9
