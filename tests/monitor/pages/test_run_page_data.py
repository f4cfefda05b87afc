"""The pure parts of the run pages: downsampling, per-viewer smoothing, metric groups, compare
parsing, and what the registry keeps for a run's page (params, status history)."""

from __future__ import annotations

import numpy as np

from monitor.model.run_points import smooth_debiased
from monitor.model.run_registry import RunRegistry
from monitor.pages import run_data
from monitor.pages.runs_list import clean_filters, matches
from monitor.pages.series import Ema, drawn, keep_indices


def test_downsampling_keeps_every_bucket_extreme_and_both_ends() -> None:
    values = np.sin(np.arange(10_000) / 50.0)
    values[4321] = 9.0  # a spike must survive
    keep = keep_indices(values, buckets=100)
    assert len(keep) <= 2 * 100 + 2
    assert keep[0] == 0 and keep[-1] == 9999 and 4321 in keep
    assert list(keep) == sorted(set(keep.tolist()))
    assert len(keep_indices(values[:150], buckets=100)) == 150  # few points: all of them


def test_ema_continues_exactly_as_tensorboard_smooths_the_whole_series() -> None:
    values = np.random.default_rng(1).normal(size=300)
    state, first = Ema.over(values[:200], 0.8)
    rest = state.add(values[200:].tolist())
    whole = smooth_debiased(values, 0.8)
    assert np.allclose(first, whole[:200])
    assert np.allclose(rest, whole[200:], rtol=1e-4)


def test_drawn_drops_non_finite_points_and_halves_the_smoothed_line() -> None:
    steps = np.arange(5000)
    values = np.linspace(1, 0, 5000)
    values[7] = np.nan
    d = drawn(steps, values, 42, 0.6, buckets=100)
    assert d.cursor == 42 and all(np.isfinite(d.raw)) and 7 not in d.x
    assert len(d.sx) < len(d.x) <= 202 and d.sx[-1] == d.x[-1] == 4999


def test_metric_groups() -> None:
    groups = run_data.grouped(["loss", "train/loss", "eval/loss", "val_acc", "lr", "grad_norm", "test-f1"])
    assert groups == {"train": ["loss", "train/loss"], "eval": ["eval/loss", "test-f1", "val_acc"],
                      "other": ["grad_norm", "lr"]}


def test_compare_keeps_known_runs_in_url_order_and_names_the_rest() -> None:
    registry = RunRegistry()
    for name in ("a", "b", "c"):
        registry.add_run(f"{name}-1", name, f"/runs/exp/{name}", "/runs", "jsonl")
    registry.add_run("d-1", "d", "/runs/other/d", "/runs", "jsonl")
    known, unknown = run_data.parse_compare("c-1,a-1,nope,../x,a-1,b-1", "a-1", registry)
    assert known == ["c-1", "b-1"] and unknown == ["nope", "../x"]
    near = run_data.siblings(registry, registry.summary("a-1") or {})
    assert {s["id"] for s in near} == {"b-1", "c-1"}
    assert run_data.compare_href("a-1", ["b-1", "c-1"]) == "/run/a-1?compare=b-1,c-1"


def test_registry_keeps_params_flat_short_and_bounded() -> None:
    registry = RunRegistry()
    registry.add_run("r-1", "r", "/runs/r", "/runs", "jsonl")
    registry.set_params("r-1", {"lr": 0.001, "optim": {"name": "adam", "betas": [0.9, 0.99]}, "note": "x" * 500,
                                "none": None})
    params = (registry.detail("r-1") or {})["params"]
    assert params["lr"] == 0.001 and params["optim.name"] == "adam" and params["optim.betas"] == "[0.9, 0.99]"
    assert params["none"] == "null" and len(params["note"]) == 200
    registry.set_params("r-1", {f"k{i}": i for i in range(2000)})
    assert len((registry.detail("r-1") or {})["params"]) == 500


def test_registry_records_the_status_history() -> None:
    registry = RunRegistry()
    registry.add_run("r-1", "r", "/runs/r", "/runs", "jsonl", now=100.0)
    registry.set_status("r-1", "stalled", "no new line for 5 min")
    registry.set_status("r-1", "running", None)
    registry.set_status("r-1", "crashed", "Traceback")
    history = (registry.detail("r-1") or {})["history"]
    assert [(h["status"], h["reason"]) for h in history] == [
        ("started", None), ("stalled", "no new line for 5 min"), ("resumed", None), ("crashed", "Traceback")]
    assert history[0]["time"] == 100.0
    for _ in range(100):
        registry.set_status("r-1", "running", None)
        registry.set_status("r-1", "stalled", "again")
    history = (registry.detail("r-1") or {})["history"]
    assert len(history) == 50 and history[0]["status"] == "started"


def test_runs_filters() -> None:
    run = {"status": "running", "name": "Exp/Llama", "root": "/data/runs"}
    assert matches(run, {"alice"}, clean_filters({"status": "running", "user": "ali", "name": "llama"}))
    assert not matches(run, {"alice"}, {"user": "bob"})
    assert not matches(run, set(), {"root": "/scratch"})
    assert clean_filters({"status": " ", "name": "x" * 500}) == {"name": "x" * 200}
