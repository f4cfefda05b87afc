"""Bad input loses nothing and stops nothing: the malformed corpus (tests/data/malformed, 59 cases,
see its README), each case its own run written by a writer process while the watcher runs.

Per case (cases.json): `reject` -> exactly one bad line, at `bad_line`, with a reason; `accept` and
`ignore` -> no bad line; `either` -> at most one. The good records around the bad line are all read.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_support import Watch, Writer
from support import wait_for

DATA = Path(__file__).resolve().parents[2] / "data" / "malformed"
CASES: list[dict[str, Any]] = json.loads((DATA / "cases.json").read_text())["cases"]
# Where the count of steps with points differs from the count of good records, and why.
DISTINCT_STEPS = {
    "36_step_goes_backwards.jsonl": 4,  # a step going backwards drops the later points (TensorBoard's rule)
    "49_csv_nan_inf_values.csv": 4,  # the row holding only nan/inf has no value to plot
}


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate_samples", DATA.parent / "generate_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watch]:
    work = tmp_path_factory.mktemp("malformed")
    huge = work / "17_huge_line_11mb.jsonl"
    _generator().make_huge_line_case(huge)
    root = work / "runs"
    root.mkdir()
    # unterminated_line_s: the cases whose last line has no newline are judged after 0.5 s, not 60 s.
    watch = Watch(root, unterminated_line_s=0.5).start()
    writer = Writer()
    try:
        for case in CASES:
            source = huge if case.get("generated") else DATA / case["file"]
            run = root / Path(case["file"]).stem
            writer.mkdir(run)
            writer.append(run / case["file"], source.read_bytes())
        names = {Path(c["file"]).stem for c in CASES}
        wait_for(lambda: names <= {r["name"] for r in watch.runs()}, timeout=20, what="a run per malformed case")
        yield watch
    finally:
        writer.close()
        watch.stop()


def _steps(watch: Watch, name: str) -> set[int]:
    run = watch.run(name)
    assert run is not None
    return {step for metric in run["metrics"] for step in watch.steps(name, metric)}


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_malformed_case_is_counted_on_its_run(corpus: Watch, case: dict[str, Any]) -> None:
    name = Path(case["file"]).stem
    good = {case["good_lines"], case.get("good_lines_if_accepted", case["good_lines"])}
    expected_steps = {DISTINCT_STEPS[case["file"]]} if case["file"] in DISTINCT_STEPS else good
    verdict = case["verdict"]

    def settled() -> dict[str, Any] | None:
        run = corpus.run(name)
        if run is None or len(_steps(corpus, name)) not in expected_steps:
            return None
        if verdict == "reject" and run["bad_lines"] < 1:
            return None
        return run

    run = wait_for(settled, timeout=10, what=f"{name}: {verdict}, {expected_steps} steps (now {corpus.run(name)})")
    if verdict == "reject":
        assert run["bad_lines"] == 1, run
        assert run["first_bad_line"]["line"] == case["bad_line"]
        assert run["first_bad_line"]["reason"] and run["first_bad_line"]["file"] == case["file"]
    elif verdict in ("accept", "ignore"):
        assert run["bad_lines"] == 0, run["first_bad_line"]
    else:
        assert run["bad_lines"] in (0, 1)
        if run["bad_lines"]:
            assert run["first_bad_line"]["line"] == case["bad_line"]


def test_every_other_run_went_on(corpus: Watch) -> None:
    health = corpus.collector.health.snapshot()
    assert health["state"] == "ok" and health["error_count"] == 0
    assert len(corpus.runs()) == len(CASES)
    bad = [e for e in corpus.events() if ": bad line " in e]
    rejected = [c for c in CASES if c["verdict"] == "reject"]
    assert len(bad) >= len(rejected)  # "bad line first seen" is logged once per run
