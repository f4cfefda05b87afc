"""The run registry and its metric points: merging by step, resumes, the cap, cursors, ids."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.model.run_points import MetricSeries, smooth_debiased
from monitor.model.run_registry import MainMetricRule, RunRegistry, run_id_for, valid_run_id
from monitor.model.store import Store


def arr(*values: float) -> np.ndarray:
    return np.array(values, np.float64)


def merge(series: MetricSeries, steps: list[int], values: list[float], resumed: bool = False) -> bool:
    return series.merge(np.array(steps), np.full(len(steps), 1.7e9), np.array(values, float), resumed)


def test_points_merge_by_step_without_duplicates() -> None:
    s = MetricSeries("loss")
    merge(s, [1, 2, 3], [3.0, 2.0, 1.0])
    read = s.read_after(0)
    assert [p[0] for p in read.points] == [1, 2, 3] and not read.reset
    assert not merge(s, [2, 3], [2.0004, 1.0])  # the same points from another file (rounded): nothing new
    assert s.read_after(read.cursor).points == []
    merge(s, [4], [0.5])
    assert [p[0] for p in s.read_after(read.cursor).points] == [4]  # an append: only the new point


def test_a_different_value_or_an_older_step_resets_readers() -> None:
    s = MetricSeries("loss")
    merge(s, [10, 20, 30], [3.0, 2.0, 1.0])
    cursor = s.read_after(0).cursor
    merge(s, [15], [2.5])  # a step between stored ones (a snapshot merge)
    read = s.read_after(cursor)
    assert read.reset and [p[0] for p in read.points] == [10, 15, 20, 30]
    merge(s, [20], [9.0])  # same step, another value: replaced
    assert [p[2] for p in s.read_after(0).points] == [3.0, 2.5, 9.0, 1.0]


def test_resume_drops_later_points_unless_it_is_a_reread() -> None:
    s = MetricSeries("loss")
    merge(s, list(range(0, 100, 10)), [float(i) for i in range(10)])
    merge(s, [30, 40], [3.0, 4.0], resumed=True)  # the same points: a re-read, nothing dropped
    assert len(s) == 10
    merge(s, [30, 40], [0.3, 0.4], resumed=True)  # other values: a resume from step 30
    assert [p[0] for p in s.read_after(0).points] == [0, 10, 20, 30, 40]


def test_cap_downsamples_the_older_half_two_to_one() -> None:
    s = MetricSeries("loss", cap=100)
    merge(s, list(range(101)), [float(i) for i in range(101)])
    steps = [p[0] for p in s.read_after(0).points]
    assert len(steps) == 76  # older half (50 points) kept every other one: 25 + 51
    assert steps[:3] == [0, 2, 4] and steps[-51:] == list(range(50, 101))
    for i in range(101, 1001):
        merge(s, [i], [float(i)])
    assert len(s) <= 100 and [p[0] for p in s.read_after(0).points][-1] == 1000


def test_storage_widens_for_big_steps_and_exact_integers() -> None:
    s = MetricSeries("tokens")
    merge(s, [1, 2**40], [3.0, float(2**40 + 1)])
    read = s.read_after(0)
    assert read.points[1][0] == 2**40 and read.points[1][2] == float(2**40 + 1)
    f = MetricSeries("lr")
    merge(f, [1], [0.1])
    assert f.read_after(0).points[0][2] == 0.1  # float32 storage, printed as written
    assert f.nbytes < 64


def test_run_ids_are_stable_url_safe_and_reject_traversal() -> None:
    a = run_id_for("/data/runs/bert large/version_0", "bert large/version_0")
    assert a == run_id_for("/data/runs/bert large/version_0", "bert large/version_0")
    assert a.startswith("bert-large-version_0-") and valid_run_id(a)
    assert a != run_id_for("/other/bert large/version_0", "bert large/version_0")
    for bad in ("..", "../../etc/passwd", "a/b", "%2e%2e", "", "-x", "a..b", "x" * 200):
        assert not valid_run_id(bad)


def test_registry_summaries_changes_and_forgetting() -> None:
    store = Store("h")
    reg: RunRegistry = store.runs
    reg.add_run("r1", "r1", "/x/r1", "/x", "jsonl", now=100.0, announce=True)
    reg.add_run("r2", "r2", "/x/r2", "/x", "csv", now=100.0)
    cursor = reg.cursor
    reg.merge_points("r1", "val_loss", arr(1), arr(1.0), arr(0.5))
    reg.merge_points("r1", "train_loss", arr(1), arr(1.0), arr(0.7))
    reg.update("r2", updated=200.0)
    changes = reg.changed_after(cursor)
    assert changes.runs == {"r1": ["val_loss", "train_loss"], "r2": []}
    assert [s["id"] for s in reg.summaries()] == ["r2", "r1"]  # most recently updated first
    assert reg.summary("r1")["main_metric"] == "train_loss"  # type: ignore[index]
    reg.configure(main_metric=[MainMetricRule("r*", "val_*")])
    assert reg.summary("r1")["main_metric"] == "val_loss"  # type: ignore[index]
    reg.note_bad_lines("r1", 2, "m.jsonl", 7, "invalid JSON")
    reg.note_bad_lines("r1", 1, "m.jsonl", 9, "other")
    assert reg.summary("r1")["first_bad_line"] == {"line": 7, "reason": "invalid JSON", "file": "m.jsonl"}  # type: ignore[index]
    assert reg.summary("r1")["bad_lines"] == 3  # type: ignore[index]
    reg.configure(forget_after_s=10)
    reg.set_status("r1", "deleted", "directory removed")
    deleted_at = reg.summary("r1")["deleted_at"]  # type: ignore[index]
    assert reg.forget_expired(deleted_at + 5) == []
    assert reg.forget_expired(deleted_at + 11) == ["r1"]
    assert reg.summary("r1") is None and "r1" in reg.changed_after(cursor).removed
    texts = [e.text for e in store.events.read_after(0)]
    assert texts == ["run started: r1 (jsonl)", "run r1: bad line m.jsonl:7: invalid JSON",
                     "run r1 deleted: directory removed"]


@pytest.mark.parametrize("bad_metric", ["nope", "../loss"])
def test_unknown_metric_reads_none(bad_metric: str) -> None:
    reg = Store("h").runs
    reg.add_run("r", "r", "/r", "/", "jsonl")
    reg.merge_points("r", "loss", arr(1), arr(1.0), arr(1.0))
    assert reg.read_metric_after("r", bad_metric) is None
    assert reg.read_metric_after("missing", "loss") is None


def test_smoothing_matches_tensorboards_debiased_ema() -> None:
    values = [1.0, 0.0, 0.5, 2.0, 1.5]
    last, expected = 0.0, []
    for i, v in enumerate(values):  # TensorBoard's own formula (vz_line_chart smoothing)
        last = last * 0.6 + (1 - 0.6) * v
        expected.append(last / (1 - 0.6 ** (i + 1)))
    assert np.allclose(smooth_debiased(values, 0.6), expected)
    assert smooth_debiased(values, 0.0).tolist() == values


def test_params_are_flat_scalars_bounded_in_count_and_length() -> None:
    from monitor.model.run_registry import MAX_PARAM_CHARS, MAX_PARAMS

    registry = RunRegistry()
    registry.add_run("r", "r", "/runs/r", "/runs", "jsonl")
    registry.set_params("r", {"lr": 0.1, "opt": {"name": "adam", "betas": [0.9, 0.99]}, "seed": None,
                              "amp": True, "note": "x" * 1000})
    params = registry.summary("r")["params"]  # type: ignore[index]
    assert params["lr"] == 0.1 and params["opt.name"] == "adam" and params["opt.betas"] == "[0.9, 0.99]"
    assert params["seed"] == "null" and params["amp"] is True and len(params["note"]) == MAX_PARAM_CHARS
    registry.set_params("r", {f"k{i}": i for i in range(MAX_PARAMS * 2)})
    assert len(registry.summary("r")["params"]) == MAX_PARAMS  # type: ignore[index]
