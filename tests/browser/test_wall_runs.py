"""The wall's run cards, joined GPU process lines and alert banner, in a real browser on a real server.

Run files are real files under `--runs DIR`, appended by the test while the page is open; the GPU
process joined to a run is a real child process (tests/join_child.py) that holds the run's
metrics.jsonl open, named by its real pid in a simulated-GPU scenario.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from browser_support import FULL_HD, open_wall
from playwright.sync_api import Browser, Page
from support import ROOT
from test_wall_page import fits

TESTS = ROOT / "tests"
CHILD = TESTS / "join_child.py"
ME = pwd.getpwuid(os.getuid()).pw_name

CARD_POINTS_JS = """(name) => {
  const card = [...document.querySelectorAll('.wall .run:not(.off)')]
    .find(c => c.querySelector('.r-name')?.textContent === name);
  const plot = card?.querySelector('.r-plot .js-plotly-plot');
  return plot && plot.data ? plot.data.map(t => t.x.length) : null;
}"""


def append(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))


def card_points(page: Page, name: str, at_least: int, timeout: float = 15.0) -> list[int]:
    page.wait_for_function(f"(n) => {{ const c = ({CARD_POINTS_JS})(n); return c && c[0] >= {at_least} }}",
                           arg=name, timeout=timeout * 1000)
    return page.evaluate(CARD_POINTS_JS, name)


def test_run_card_appears_and_its_chart_streams(tmp_path: Path, browser: Browser,
                                                labwall_server: Callable[..., Any]) -> None:
    root = tmp_path / "runs"
    (root / "llama-ft").mkdir(parents=True)
    metrics = root / "llama-ft" / "metrics.jsonl"
    append(metrics, [{"step": 1, "loss": 3.0}])
    server = labwall_server(config={"gpu": {"backend": "simulated"}}, args=["--runs", str(root)])
    page = open_wall(browser, server.url)
    try:
        name = page.locator(".wall .run:not(.off) .r-name").first
        name.wait_for(timeout=15_000)
        assert name.text_content() == "llama-ft"
        assert card_points(page, "llama-ft", 1) == [1, 1]
        step = page.locator(".wall .run:not(.off) .r-step").first
        # lines appended while the page is open reach the card and its chart (extendTraces)
        append(metrics, [{"step": s, "loss": 3.0 / s} for s in range(2, 6)])
        assert card_points(page, "llama-ft", 5) == [5, 5]
        page.wait_for_function("(el) => el.textContent === 'step 5'", arg=step.element_handle(), timeout=10_000)
        append(metrics, [{"step": s, "loss": 3.0 / s} for s in range(6, 21)])
        assert card_points(page, "llama-ft", 20) == [20, 20]
        assert page.text_content(".wall .run:not(.off) .r-metric") == "loss 0.15"
        # the smoothed line is TensorBoard's debiased EMA (weight 0.6), continued tick by tick
        ema = page.evaluate("""() => document.querySelector('.wall .run .r-plot .js-plotly-plot').data[1].y""")
        last, values = 0.0, []
        for n, v in enumerate((3.0 / s for s in range(1, 21)), start=1):
            last = last * 0.6 + 0.4 * v
            values.append(last / (1 - 0.6**n))
        assert len(ema) == len(values) and all(abs(a - b) < 1e-3 for a, b in zip(ema, values, strict=True)), ema
        found = fits(page)
        assert found["scrollW"] <= found["vw"] and found["scrollH"] <= found["vh"], found
        assert found["clipped"] == [], found
        # a broken line is counted on the card, and the lines after it still arrive
        assert page.is_hidden(".wall .run:not(.off) .r-bad")
        with metrics.open("a") as f:
            f.write('{"step": 21, "loss": \n')
        append(metrics, [{"step": 22, "loss": 0.1}])
        page.wait_for_function("() => document.querySelector('.wall .run:not(.off) .r-bad')?.textContent"
                               " === '⚠ 1 bad line'", timeout=10_000)
        page.wait_for_function("(el) => el.textContent === 'step 22'", arg=step.element_handle(), timeout=10_000)
    finally:
        page.context.close()


def test_joined_gpu_process_alert_banner_and_screenshot(tmp_path: Path, browser: Browser,
                                                        labwall_server: Callable[..., Any]) -> None:
    root = tmp_path / "runs"
    run = root / "llama-ft"
    run.mkdir(parents=True)
    metrics = run / "metrics.jsonl"
    trainer = subprocess.Popen([sys.executable, str(CHILD)], cwd=tmp_path, text=True,
                               env={**os.environ, "PYTHONPATH": str(TESTS), "JOIN_HOLD": str(metrics)},
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert trainer.stdout is not None
        words = trainer.stdout.readline().split()
        assert words[:1] == ["ready"], words
        pid = int(words[1])
        (root / "vit-base").mkdir()
        append(root / "vit-base" / "metrics.jsonl", [{"step": s, "accuracy": 0.5 + s / 100} for s in range(1, 30)])
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps({"gpus": [
            {"name": "NVIDIA H100 80GB HBM3", "readings": {"temperature_c": 93},
             "processes": [{"pid": pid, "user": ME, "command": "python train.py", "gpu_memory_bytes": 40 * 2**30}]},
            {"name": "NVIDIA H100 80GB HBM3",
             "processes": [{"pid": 999_999_999, "user": "bob", "command": "python eval.py --fast"}]},
            {"name": "NVIDIA H100 80GB HBM3"},
            {"name": "NVIDIA H100 80GB HBM3"},
        ]}))
        server = labwall_server(config={"gpu": {"backend": "simulated", "simulated_scenario": str(scenario)},
                                        "join": {"interval_s": 0.2},
                                        "alerts": {"gpu_hot": {"for_s": 1, "severity": "critical"}}},
                                args=["--runs", str(root)])
        page = open_wall(browser, server.url, FULL_HD)
        try:
            append(metrics, [{"step": s, "loss": round(2.5 - s / 1000, 3)} for s in range(2, 1201, 7)])
            append(metrics, [{"step": 1200, "loss": 1.83}])
            # the GPU tile names the run the process writes
            joined = f"{ME} · llama-ft · step 1200 · loss 1.83"
            page.wait_for_function(
                "(t) => [...document.querySelectorAll('.wall .tile .proc:not(.off)')].some(p =>"
                " p.querySelector('.p-user').textContent + ' ' + p.querySelector('.p-cmd').textContent === t)",
                arg=joined, timeout=20_000)
            # a process the join cannot place keeps its command, marked "unknown run"
            bob = page.locator(".wall .tile .proc:not(.off)", has_text="bob")
            assert bob.locator(".p-cmd").text_content() == "python eval.py --fast"
            assert bob.locator(".p-run:not(.off)").text_content() == "unknown run"
            # the alert banner: the hot GPU, readable, on top
            banner = page.locator(".wall .alert-banner:not(.off)")
            banner.wait_for(timeout=20_000)
            text = banner.inner_text()
            assert "CRITICAL" in text and "ago" in text, text
            assert "GPU 0" in text or "gpu0" in text.lower() or "hot" in text.lower(), text
            assert card_points(page, "llama-ft", 100)[0] >= 100
            card_points(page, "vit-base", 29)
            found = fits(page)
            assert found["scrollW"] <= found["vw"] and found["scrollH"] <= found["vh"], found
            assert found["clipped"] == [], found
            target = ROOT / "docs" / "wall-runs-alert.png"
            page.screenshot(path=str(target))
            assert target.stat().st_size > 50_000
        finally:
            page.context.close()
    finally:
        assert trainer.stdin is not None
        trainer.stdin.close()
        try:
            trainer.wait(5)
        except subprocess.TimeoutExpired:
            trainer.kill()
            trainer.wait(5)
