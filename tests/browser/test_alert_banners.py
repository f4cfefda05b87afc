"""Every alert rule, raised on a real server and shown in a real browser: in the banner (largest first,
naming its GPU, run, disk or collector), in the `ui.log` event feed, in GET /api/alerts; and cleared
from the banner when its condition clears.

Nothing is faked but the GPUs (the simulated backend, with a scenario whose events repeat, so a
loaded machine that misses one round sees the next): the run directories are real files written by
the test, the full disk is this machine's real disk (thresholds.disk_ratio set below its real use),
and the collector that goes down is the GPU collector, really hung by the scenario's `hang` event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser_support import open_wall, start_server, write_json
from playwright.sync_api import Browser, Page
from support import LabwallServer, wait_for

pytestmark = pytest.mark.browser
GIB = 2**30
TIMEOUT = 40.0  # generous: the scenarios repeat every 10 s, a loaded machine may miss a round

BANNER_JS = """() => {
  const b = document.querySelector('.wall .alert-banner');
  if (!b || b.classList.contains('off')) return null;
  const text = (sel) => b.querySelector(sel)?.textContent ?? '';
  return {crit: b.classList.contains('crit'), sev: text('.al-sev'), title: text('.al-title'),
          subj: text('.al-subj'), age: text('.al-age'),
          others: [...b.querySelectorAll('.al-other:not(.off)')].map(e => e.textContent),
          more: b.querySelector('.al-more:not(.off)')?.textContent ?? null};
}"""
FEED_JS = "() => [...document.querySelectorAll('.wall .ev-log .ev')].map(e => e.textContent)"


def banner(page: Page) -> dict[str, Any] | None:
    return page.evaluate(BANNER_JS)


def wait_banner(page: Page, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    seen: list[Any] = []

    def shown() -> dict[str, Any] | None:
        found = banner(page)
        if not seen or seen[-1] != found:
            seen.append(found)
        return found if found is not None and check(found) else None

    try:
        return wait_for(shown, TIMEOUT, 0.1, what=f"the banner {what}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it showed, in turn: {seen[-8:]}") from None


def names(found: dict[str, Any]) -> list[str]:
    """The alert titles the banner shows, largest first."""
    return [found["title"], *found["others"]]


def wait_feed(page: Page, *texts: str) -> list[str]:
    def has_all() -> list[str] | None:
        lines = page.evaluate(FEED_JS)
        return lines if all(any(t in line for line in lines) for t in texts) else None

    return wait_for(has_all, TIMEOUT, 0.2, what=f"feed lines {texts} (now: {page.evaluate(FEED_JS)[-12:]})")


def alerts(server: LabwallServer) -> dict[str, Any]:
    return server.get("/api/alerts").json()


def wait_api(server: LabwallServer, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    def matching() -> dict[str, Any] | None:
        doc = alerts(server)
        return doc if check(doc) else None

    return wait_for(matching, TIMEOUT, 0.2, what=f"/api/alerts {what}")


def recent_ids(doc: dict[str, Any]) -> set[str]:
    return {a["id"] for a in doc["recent"]}


def append(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def largest_first(active: list[dict[str, Any]]) -> bool:
    rank = {"critical": 0, "warning": 1}
    keys = [(rank[a["severity"]], a["raised_at"]) for a in active]
    return keys == sorted(keys)


# -- the GPU rules: gpu_hot, gpu_memory_full, gpu_idle, gpu_xid, gpu_lost ------------------------------

GPU_ORDER = ["GPU 3 lost", "GPU 3 XID 79", "GPU 0 hot", "GPU 1 memory full", "GPU 2 idle"]


def test_gpu_alerts_largest_first_in_banner_feed_and_api(browser: Browser, tmp_path: Path) -> None:
    full = int(81559 * 2**20 * 0.99)  # of the simulated H100's 81559 MiB
    scenario = {
        "gpus": [
            {"name": "NVIDIA H100 80GB HBM3", "readings": {"temperature_c": 93, "utilization_gpu": 90},
             "processes": [{"pid": 101, "user": "alice", "command": "python train.py", "gpu_memory_bytes": 20 * GIB}]},
            {"name": "NVIDIA H100 80GB HBM3", "readings": {"memory_used_bytes": full, "utilization_gpu": 97},
             "processes": [{"pid": 102, "user": "bob", "command": "python big.py", "gpu_memory_bytes": 78 * GIB}]},
            {"name": "NVIDIA H100 80GB HBM3", "readings": {"utilization_gpu": 0},
             "processes": [{"pid": 103, "user": "carol", "command": "jupyter", "gpu_memory_bytes": 10 * GIB}]},
            {"name": "NVIDIA H100 80GB HBM3"},
        ],  # busy GPUs are pinned busy: the simulated load dips at checkpoints, which is not what this tests
        # each round: GPU 3 reports XID 79, falls off the bus, and is back 4 s later
        "events": [{"at_s": 1, "gpu": 3, "event": "xid", "code": 79},
                   {"at_s": 1, "gpu": 3, "event": "lost"}, {"at_s": 5, "gpu": 3, "event": "recovered"}],
        "repeat_s": 10,
    }  # fmt: skip
    config = {
        "gpu": {"backend": "simulated", "interval_s": 0.5,
                "simulated_scenario": str(write_json(tmp_path / "scenario.json", scenario))},
        "alerts": {"interval_s": 0.25, "gpu_lost": {"clear_after_s": 0.5}, "gpu_xid": {"hold_s": 3.5},
                   # raised one second apart, so "oldest first" among the warnings is this order
                   "gpu_hot": {"for_s": 1}, "gpu_memory_full": {"for_s": 2}, "gpu_idle": {"for_s": 3}},
    }  # fmt: skip
    server = start_server(tmp_path, config)
    try:
        page = open_wall(browser, server.url)
        # all five at once: the two critical ones first, then the warnings, oldest raised first
        found = wait_banner(page, lambda b: names(b) == GPU_ORDER, f"naming {GPU_ORDER} in this order")
        assert (found["crit"], found["sev"], found["subj"], found["more"]) == (True, "CRITICAL", "", None)
        assert found["age"].endswith(" ago"), found
        doc = wait_api(server, lambda d: [a["title"] for a in d["active"]] == GPU_ORDER, f"active = {GPU_ORDER}")
        assert largest_first(doc["active"]), doc["active"]
        messages = {a["id"]: a["message"] for a in doc["active"]}
        assert messages["gpu_lost:gpu3"] == "GPU 3 lost: GPU is lost"
        assert messages["gpu_xid:gpu3"] == "GPU 3 XID 79: fallen off the bus"
        assert messages["gpu_hot:gpu0"] == "GPU 0 at 93 °C (alert at 85 °C)"
        assert messages["gpu_memory_full:gpu1"] == "GPU 1 memory 99% full (78.9 GiB of 79.6 GiB), held by bob"
        assert messages["gpu_idle:gpu2"].startswith("GPU 2 idle (0 % utilization") and "carol holds 10.0 GiB" in \
            messages["gpu_idle:gpu2"]
        wait_feed(page, "GPU 3 XID 79: fallen off the bus", "raised — GPU 3 lost: GPU is lost",
                  "raised — GPU 3 XID 79: fallen off the bus", "raised — GPU 0 at 93 °C",
                  "raised — GPU 1 memory 99% full", "raised — GPU 2 idle")

        # GPU 3 answers again and its XID is older than hold_s: both leave the banner, the rest stays
        found = wait_banner(page, lambda b: names(b) == GPU_ORDER[2:], "without GPU 3's alerts")
        assert (found["crit"], found["sev"]) == (False, "WARNING")
        doc = wait_api(server, lambda d: {"gpu_lost:gpu3", "gpu_xid:gpu3"} <= recent_ids(d), "recent with GPU 3's")
        assert [a["title"] for a in doc["active"]] == GPU_ORDER[2:]
        wait_feed(page, "cleared — GPU 3 lost", "cleared — GPU 3 XID 79")
        page.context.close()
    finally:
        server.stop()


# -- disk_full, run_crashed, run_stalled, collector_down ----------------------------------------------


def test_disk_run_and_collector_alerts_in_banner_feed_and_api(browser: Browser, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    crashing, stalling = root / "llama-ft" / "metrics.jsonl", root / "vit-base" / "metrics.jsonl"
    for path in (crashing, stalling):
        path.parent.mkdir(parents=True)
        append(path, [{"step": s, "loss": 3.0 / s} for s in range(1, 6 if path == crashing else 5)])
    # each round the GPU collector's next reading hangs for 5 s: it counts as hung after 2 s
    scenario = {"gpus": [{"name": "NVIDIA H100 80GB HBM3"}],
                "events": [{"at_s": 1, "gpu": 0, "event": "hang", "for_s": 5}], "repeat_s": 10}
    config = {
        "gpu": {"backend": "simulated", "interval_s": 0.5,
                "simulated_scenario": str(write_json(tmp_path / "scenario.json", scenario))},
        "host": {"interval_s": 0.5},
        "runs": {"roots": [str(root)], "stall_factor": 1, "stall_min_s": 3, "rescan_s": 1},
        # the real disk under the run root is fuller than this: it counts as full
        "thresholds": {"disk_ratio": 0.0001},
        "alerts": {"interval_s": 0.25, "disk_full": {"for_s": 0.5},
                   "collector_down": {"for_s": 0.5, "clear_after_s": 0.5}},
    }  # fmt: skip
    server = start_server(tmp_path, config)
    try:
        page = open_wall(browser, server.url)
        # step 5 while labwall watches: a live run that then goes quiet stalls (one quiet before labwall
        # found it would read "ended before labwall found it", however slowly this server started)
        append(stalling, [{"step": 5, "loss": 3.0 / 5}])
        append(crashing, [{"event": "crash"}])
        disk = f"disk {root} full"
        expected = {disk, "run llama-ft crashed", "run vit-base stalled", "collector gpu down"}
        found = wait_banner(page, lambda b: expected <= set(names(b)), f"naming {sorted(expected)}")
        assert found["crit"] and found["sev"] == "CRITICAL" and found["more"] is None, found
        doc = wait_api(server, lambda d: expected <= {a["title"] for a in d["active"]}, f"active with {expected}")
        assert largest_first(doc["active"]), doc["active"]
        shown = [t for t in names(found) if t in expected]
        api_order = [a["title"] for a in doc["active"] if a["title"] in expected]
        assert shown[-1] == api_order[-1] == "run vit-base stalled"  # the only warning: last
        messages = {a["rule"] + ":" + a["subject"]: a["message"] for a in doc["active"]}
        assert messages[f"disk_full:{root}"].startswith(f"disk of {root} ") and "(alert at 0%)" in \
            messages[f"disk_full:{root}"]
        assert messages["run_crashed:run llama-ft"].startswith('run llama-ft crashed: {"event": "crash"} logged')
        assert messages["run_stalled:run vit-base"].startswith("run vit-base stalled at step 5: no new data for")
        assert messages["collector_down:collector gpu"].startswith("collector gpu failing: hung: a reading has not")
        wait_feed(page, f"raised — disk of {root}", "raised — run llama-ft crashed", "raised — run vit-base stalled",
                  "raised — collector gpu failing: hung")

        # the hang ends, the crashed run goes on, the stalled one gets new data: each clears
        append(crashing, [{"step": 6, "loss": 0.5}])
        append(stalling, [{"step": 6, "loss": 0.5}])
        wait_banner(page, lambda b: "run llama-ft crashed" not in names(b) and "collector gpu down" not in names(b)
                    and disk in names(b), "without the crashed run and the hung collector")
        doc = wait_api(server, lambda d: {"run_crashed", "run_stalled", "collector_down"}
                       <= {a["rule"] for a in d["recent"]}, "recent with the run and collector alerts")
        assert disk in [a["title"] for a in doc["active"]]  # the disk stays full
        wait_feed(page, "cleared — run llama-ft crashed", "cleared — run vit-base stalled",
                  "cleared — collector gpu down")
        page.context.close()
    finally:
        server.stop()
