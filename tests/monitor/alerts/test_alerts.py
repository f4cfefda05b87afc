"""Alert rules and their lifecycle on a fake clock: the real GpuCollector over the NVML test double
feeds a real Store, the AlertEngine reads it. Each rule is raised after its duration and not before,
and cleared with hysteresis (a value bouncing around its threshold does not flap)."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path
from typing import Any

import psutil
import pynvml
import pytest
from alerts_support import HOST, Lab, make_config
from fastapi import FastAPI
from support import wait_for

from collectors.base import Collector, CollectorThread
from collectors.gpu.sim_model import GIB
from collectors.host import HostCollector
from monitor.config import ConfigError, parse_config
from monitor.model.store import Store
from monitor.wall.alert_banner import alert_cells
from monitor.web.alerts_api import alerts_view, register_alerts_api

# -- gpu_hot ---------------------------------------------------------------------------------------


def test_gpu_hot_is_raised_after_for_s_and_not_before() -> None:
    lab = Lab()
    lab.tick()
    lab.fake.readings[2].temperature_c = 90
    lab.tick(30)  # hot from the first of these readings: 29 s so far
    assert "gpu_hot:gpu2" in lab.pending() and not lab.active()
    assert lab.alert_events() == []
    lab.tick()
    alert = lab.active()["gpu_hot:gpu2"]
    assert alert["rule"] == "gpu_hot" and alert["severity"] == "warning" and alert["state"] == "active"
    assert alert["subject"] == "GPU 2" and alert["raised_at"] == lab.t and alert["cleared_at"] is None
    assert alert["since"] == lab.t - 30  # pending from the first hot reading
    assert alert["message"] == "GPU 2 at 90 °C (alert at 85 °C)"
    assert lab.alert_events() == [("warning", "raised — GPU 2 at 90 °C (alert at 85 °C)")]


def test_gpu_hot_bouncing_around_the_threshold_does_not_flap() -> None:
    lab = Lab()
    lab.fake.readings[0].temperature_c = 86
    lab.tick(31)
    assert list(lab.active()) == ["gpu_hot:gpu0"]
    for k in range(600):  # 84/86 around the 85 °C threshold: within the 5 °C band, stays raised
        lab.fake.readings[0].temperature_c = 84 if k % 2 else 86
        lab.tick()
        assert "gpu_hot:gpu0" in lab.active()
    for k in range(300):  # dipping below 80 for less than clear_after_s at a time: still raised
        lab.fake.readings[0].temperature_c = 79 if k % 50 < 40 else 82
        lab.tick()
    assert "gpu_hot:gpu0" in lab.active()
    lab.fake.readings[0].temperature_c = 79
    lab.tick(60)  # below the band from the first of these readings: 59 s so far
    assert "gpu_hot:gpu0" in lab.active()
    lab.tick()
    assert not lab.active()
    [cleared] = lab.recent()
    assert cleared["id"] == "gpu_hot:gpu0" and cleared["state"] == "cleared" and cleared["cleared_at"] == lab.t
    events = lab.alert_events()
    assert [level for level, _ in events] == ["warning", "info"]  # one raise, one clear: no flapping
    assert events[1][1] == "cleared — GPU 0 hot (active for 16 min)"


def test_a_value_bouncing_below_the_band_never_raises() -> None:
    lab = Lab()
    for k in range(300):  # 86 then 78: leaves the band every other second, so never held for 30 s
        lab.fake.readings[1].temperature_c = 86 if k % 2 == 0 else 78
        lab.tick()
    assert not lab.active() and lab.alert_events() == []


def test_thermal_throttling_raises_gpu_hot_whatever_the_temperature() -> None:
    lab = Lab()
    lab.fake.readings[3].clocks_event_reasons = pynvml.nvmlClocksEventReasonHwThermalSlowdown
    lab.tick(30)
    assert not lab.active()
    lab.tick()
    assert (
        lab.active()["gpu_hot:gpu3"]["message"]
        == "GPU 3 at 43 °C (alert at 85 °C); thermally throttling (hw_thermal_slowdown)"
    )
    lab.fake.readings[3].clocks_event_reasons = pynvml.nvmlClocksEventReasonSwPowerCap  # not thermal
    lab.tick(61)
    assert not lab.active()


# -- gpu_memory_full, gpu_idle ---------------------------------------------------------------------


def test_gpu_memory_full_names_the_users_and_clears_with_hysteresis() -> None:
    lab = Lab()
    lab.fake.add_process(1, 4242, "alice", "python train.py", memory=60 * GIB)
    lab.fake.add_process(1, 4343, "bob", "python eval.py", memory=17 * GIB)
    lab.fake.readings[1].memory_used_bytes = 78 * GIB  # 97.5 % of 80 GiB
    lab.tick(60)
    assert not lab.active()
    lab.tick()
    alert = lab.active()["gpu_memory_full:gpu1"]
    assert alert["message"] == "GPU 1 memory 98% full (78.0 GiB of 80.0 GiB), held by alice, bob"
    assert alert["details"]["users"] == ["alice", "bob"]
    lab.fake.readings[1].memory_used_bytes = int(0.93 * 80 * GIB)  # below 95 % but within the 3 % band
    lab.tick(300)
    assert "gpu_memory_full:gpu1" in lab.active()
    lab.fake.readings[1].memory_used_bytes = 70 * GIB
    lab.tick(61)
    assert not lab.active() and lab.recent()[0]["id"] == "gpu_memory_full:gpu1"


def test_gpu_idle_after_ten_minutes_names_who_holds_it() -> None:
    lab = Lab()
    lab.fake.add_process(2, 777, "alice", "python -m ipykernel_launcher", memory=40 * GIB)
    lab.fake.add_process(2, 778, None, "python worker.py", memory=2 * GIB)  # type: ignore[arg-type]
    lab.fake.readings[2].utilization_gpu = 0
    lab.fake.readings[3].utilization_gpu = 0  # idle but nobody holds it: not wasted, no alert
    lab.tick(600)
    assert not lab.active()
    lab.tick()
    assert list(lab.active()) == ["gpu_idle:gpu2"]
    alert = lab.active()["gpu_idle:gpu2"]
    assert alert["message"] == "GPU 2 idle (0 % utilization for over 10 min) while alice, unknown user hold 42.0 GiB"
    assert alert["details"]["users"] == ["alice", "unknown user"] and alert["details"]["pids"] == [777, 778]
    for k in range(120):  # short bursts up to 8 % (below 5 + 5): still idle
        lab.fake.readings[2].utilization_gpu = 8 if k % 10 == 0 else 1
        lab.tick()
    assert "gpu_idle:gpu2" in lab.active()
    lab.fake.readings[2].utilization_gpu = 95  # training resumed
    lab.tick(60)
    assert "gpu_idle:gpu2" in lab.active()
    lab.tick()
    assert not lab.active()


def test_gpu_idle_timer_restarts_when_utilization_leaves_the_band() -> None:
    lab = Lab()
    lab.fake.add_process(0, 100, "carol", "python train.py")
    lab.fake.readings[0].utilization_gpu = 0
    lab.tick(500)
    lab.fake.readings[0].utilization_gpu = 60  # a real burst of work: not idle after all
    lab.tick()
    lab.fake.readings[0].utilization_gpu = 0
    lab.tick(600)
    assert not lab.active()
    lab.tick()
    assert "gpu_idle:gpu0" in lab.active()


# -- gpu_lost, stale readings ----------------------------------------------------------------------


def test_gpu_lost_is_raised_at_once_and_a_flapping_gpu_is_one_alert() -> None:
    lab = Lab()
    lab.tick()
    lab.fake.lose(1)
    lab.tick()
    alert = lab.active()["gpu_lost:gpu1"]
    assert alert["severity"] == "critical" and alert["message"].startswith("GPU 1 lost: ")
    assert lab.alert_events()[0][0] == "error"
    for k in range(120):  # answers for 10 s, lost for 10 s, ...: below clear_after_s (30 s)
        if k % 20 < 10:
            lab.fake.restore(1)
        else:
            lab.fake.lose(1)
        lab.tick()
    assert "gpu_lost:gpu1" in lab.active()
    lab.fake.restore(1)
    lab.tick(30)
    assert "gpu_lost:gpu1" in lab.active()
    lab.tick()
    assert not lab.active()
    assert [level for level, _ in lab.alert_events()] == ["error", "info"]


def test_a_gpu_the_driver_stops_listing_is_lost() -> None:
    lab = Lab(count=4)
    lab.tick()
    lab.fake.gpus.pop()  # after a re-initialisation NVML lists 3 GPUs
    lab.fake.readings.pop()
    lab.gpu.setup()
    lab.tick()
    assert lab.active()["gpu_lost:gpu3"]["message"] == "GPU 3 (Fake GPU 3) is no longer listed by the driver"


def test_a_stale_gpu_reading_neither_raises_nor_clears() -> None:
    lab = Lab()
    lab.fake.readings[0].temperature_c = 95
    lab.tick(31)
    assert "gpu_hot:gpu0" in lab.active()
    lab.fake.readings[0].temperature_c = 40
    lab.gpu_running = False  # the GPU collector stops publishing: its last reading grows stale
    lab.tick(600)
    assert "gpu_hot:gpu0" in lab.active()  # unknown is not "cooled down"
    lab.gpu_running = True
    lab.tick(61)
    assert not lab.active()


# -- disk_full -------------------------------------------------------------------------------------

Usage = namedtuple("Usage", "total used free percent")


def test_disk_full_with_the_real_host_collector(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    usage = {"used": 0.5}
    real = psutil.disk_usage

    def fake_usage(path: str) -> Any:
        if path != str(root):
            return real(path)
        if usage["used"] is None:
            raise PermissionError(path)
        used = int(usage["used"] * 1000 * GIB)
        return Usage(1000 * GIB, used, 1000 * GIB - used, 100 * usage["used"])

    monkeypatch.setattr(psutil, "disk_usage", fake_usage)
    lab = Lab()
    host = HostCollector(lab.store, 1.0, disk_paths=[root])
    host.setup()

    def tick(n: int) -> None:
        for _ in range(n):
            lab.t += 1
            host.collect(lab.t)
            lab.engine.collect(lab.t)

    usage["used"] = 0.93
    tick(60)
    assert not lab.active()
    tick(1)
    alert = lab.active()[f"disk_full:{root}"]
    assert alert["severity"] == "critical" and alert["subject"] == str(root)
    assert alert["message"] == f"disk of {root} 93% full (alert at 90%), 70.0 GiB free"
    usage["used"] = None  # unreadable for a while: unknown, the alert keeps its state
    tick(600)
    assert f"disk_full:{root}" in lab.active()
    usage["used"] = 0.89  # below 90 % but within the 2 % band
    tick(600)
    assert f"disk_full:{root}" in lab.active()
    usage["used"] = 0.80
    tick(300)
    assert lab.active()
    tick(1)
    assert not lab.active()


# -- runs --------------------------------------------------------------------------------------------


def _run(lab: Lab, name: str, updated: float, writers: list[int] | None = None) -> str:
    registry = lab.store.runs
    run_id = f"{name}-0123456789"
    registry.add_run(run_id, name, f"/runs/{name}", "/runs", "jsonl", now=updated - 100)
    registry.update(run_id, updated=updated, step=1200, writer_pids=writers or [])
    return run_id


def test_run_crashed_is_active_for_active_s_then_clears() -> None:
    lab = Lab()
    run_id = _run(lab, "llama-ft", lab.t)
    lab.tick()
    lab.t += 1
    lab.store.runs.update(run_id, updated=lab.t)
    lab.store.runs.set_status(run_id, "crashed", "RuntimeError: CUDA out of memory (train.log:88)")
    lab.tick()
    alert = lab.active()[f"run_crashed:{run_id}"]
    assert alert["severity"] == "critical" and alert["subject"] == "run llama-ft"
    assert alert["message"] == "run llama-ft crashed: RuntimeError: CUDA out of memory (train.log:88)"
    lab.tick(1795)
    assert lab.active()
    lab.tick(5)
    assert not lab.active()  # nobody acknowledges on a read-only wall: it expires
    assert lab.recent()[0]["id"] == f"run_crashed:{run_id}"


def test_run_crashed_clears_when_the_run_goes_on() -> None:
    lab = Lab()
    run_id = _run(lab, "bert", lab.t)
    lab.tick()
    lab.store.runs.set_status(run_id, "crashed", "Killed")
    lab.tick()
    assert lab.active()
    lab.store.runs.set_status(run_id, "running", None)  # resumed: new steps after the marker
    lab.tick()
    assert not lab.active()


def test_an_old_crash_found_at_start_up_is_not_news_but_a_writer_exit_is() -> None:
    lab = Lab()
    old = _run(lab, "old-run", lab.t - 2 * 86400)
    lab.store.runs.set_status(old, "crashed", "Traceback: ValueError")
    live = _run(lab, "live-run", lab.t - 3600, writers=[4321])  # stalled an hour, writer still alive
    lab.store.runs.set_status(live, "stalled", "no new data")
    lab.tick()
    assert set(lab.active()) == {f"run_stalled:{live}"}
    lab.store.runs.update(live, writer_pids=[])
    lab.store.runs.set_status(live, "crashed", "writer process 4321 (python) exited before the run finished")
    lab.tick()
    assert set(lab.active()) == {f"run_crashed:{live}"}


def test_run_stalled_and_abandoned_runs() -> None:
    lab = Lab()
    fresh = _run(lab, "fresh", lab.t - 300)
    abandoned = _run(lab, "abandoned", lab.t - 7 * 86400)
    for run_id in (fresh, abandoned):
        lab.store.runs.set_status(run_id, "stalled", "no new data for more than 120 s")
    lab.tick()
    assert list(lab.active()) == [f"run_stalled:{fresh}"]
    assert lab.active()[f"run_stalled:{fresh}"]["message"] == "run fresh stalled at step 1200: no new data for 5 min"
    lab.store.runs.set_status(fresh, "running", None)
    lab.tick()
    assert not lab.active()
    lab.store.runs.remove(fresh)
    lab.tick()
    assert not lab.active() and len(lab.recent()) == 1


# -- collector_down --------------------------------------------------------------------------------


class Broken(Collector):
    name = "broken"

    def __init__(self, store: Store) -> None:
        super().__init__(store, 1.0)
        self.error: Exception | None = None

    def collect(self, now: float) -> None:
        if self.error is not None:
            raise self.error


def test_collector_down_after_for_s_and_recovered() -> None:
    lab = Lab()
    broken = Broken(lab.store)
    thread = CollectorThread(broken)
    thread.step()
    lab.tick()
    broken.error = OSError("sensor bus gone")
    thread.step()
    lab.tick(30)
    assert not lab.active()
    lab.tick()
    alert = lab.active()["collector_down:broken"]
    assert alert["severity"] == "critical" and alert["message"] == "collector broken failing: OSError: sensor bus gone"
    broken.error = None
    thread.step()
    lab.tick(10)
    assert lab.active()
    lab.tick()
    assert not lab.active()


def test_no_driver_is_not_an_alert_but_a_driver_that_went_away_is() -> None:
    lab = Lab()
    lab.gpu.close()
    lab.fake.init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    lab.gpu.health.last_sample = None  # as on a machine where NVML never worked since start
    thread = CollectorThread(lab.gpu)
    lab.gpu_running = False
    thread.step()
    assert lab.gpu.health.snapshot()["state"] == "unavailable"
    lab.tick(3600)
    assert not lab.active() and not lab.pending() and lab.alert_events() == []
    lab.fake.init_error = None
    thread.step()  # the driver loads: the GPU collector works
    assert lab.gpu.health.snapshot()["state"] == "ok"
    lab.fake.library_error = pynvml.NVML_ERROR_UNINITIALIZED  # ... and is unloaded again
    thread.step()
    lab.tick(31)
    assert lab.active()["collector_down:gpu"]["message"].startswith("collector gpu unavailable: ")


# -- config, API -----------------------------------------------------------------------------------


def test_disabled_rule_and_bad_keys() -> None:
    lab = Lab(make_config({"gpu_hot": {"enabled": False}}))
    lab.fake.readings[0].temperature_c = 100
    lab.tick(100)
    assert not lab.active()
    with pytest.raises(ConfigError) as info:
        parse_config({"alerts": {"gpu_hot": {"for": 3}, "disk_full": {"severity": "fatal"}}})
    text = "\n".join(info.value.problems)
    assert "alerts.gpu_hot.for: unknown key" in text and "alerts.disk_full.severity" in text


def test_api_lists_active_largest_first_and_recent() -> None:
    lab = Lab(make_config({"gpu_hot": {"for_s": 0, "clear_after_s": 0}}))
    lab.fake.readings[0].temperature_c = 90
    lab.tick()
    lab.fake.readings[3].temperature_c = 90
    lab.fake.readings[1].temperature_c = 90
    lab.tick()
    lab.fake.lose(2)
    lab.tick()
    lab.fake.readings[1].temperature_c = 40
    lab.tick()
    app = FastAPI()
    register_alerts_api(app, lab.store)
    assert "/api/alerts" in [getattr(r, "path", None) for r in app.routes]
    body = alerts_view(lab.store)
    assert [a["id"] for a in body["active"]] == ["gpu_lost:gpu2", "gpu_hot:gpu0", "gpu_hot:gpu3"]
    assert [a["id"] for a in body["recent"]] == ["gpu_hot:gpu1"]
    assert body["enabled"] is True and body["host"] == HOST and body["raised_total"] == 4
    assert alerts_view(Store("h"))["active"] == []


def test_banner_cells_name_the_largest_then_the_next_four_and_count_the_rest() -> None:
    lab = Lab(make_config({"gpu_hot": {"for_s": 0}, "gpu_lost": {"for_s": 0}}), count=8)
    lab.tick()
    assert alert_cells(lab.store, lab.t)["al"].level == "off"
    for i in (5, 1, 6, 2, 7):  # hot one after the other: raised in this order
        lab.fake.readings[i].temperature_c = 95
        lab.tick()
    lab.fake.lose(3)
    lab.tick()
    cells = alert_cells(lab.store, lab.t)
    assert (cells["al"].level, cells["al.sev"].text, cells["al.title"].text) == ("crit", "CRITICAL", "GPU 3 lost")
    assert cells["al.subj"].text == ""  # the title names it already
    others = [cells[f"al.o{k}"] for k in range(4)]
    assert [c.text for c in others] == ["GPU 5 hot", "GPU 1 hot", "GPU 6 hot", "GPU 2 hot"]
    assert {c.level for c in others} == {"warn"} and cells["al.others"].level == ""
    assert (cells["al.more"].text, cells["al.more"].level) == ("+ 1 more alert", "")  # GPU 7
    lab.fake.restore(3)
    lab.tick(60)
    cells = alert_cells(lab.store, lab.t)
    assert (cells["al"].level, cells["al.title"].text, cells["al.age"].text) == ("warn", "GPU 5 hot", "1 min ago")
    assert [cells[f"al.o{k}"].text for k in range(4)] == ["GPU 1 hot", "GPU 6 hot", "GPU 2 hot", "GPU 7 hot"]
    assert cells["al.more"].level == "off"


def test_recent_list_is_bounded() -> None:
    lab = Lab(make_config({"recent_max": 5, "gpu_lost": {"clear_after_s": 0}}))
    for _ in range(20):
        lab.fake.lose(0)
        lab.tick()
        lab.fake.restore(0)
        lab.tick()
    assert len(lab.recent()) == 5 and lab.doc()["raised_total"] == 20
    assert len({a["seq"] for a in lab.recent()}) == 5  # one id, told apart by seq


# -- a real server -----------------------------------------------------------------------------------


def test_real_demo_server_shows_a_hot_gpu_in_api_alerts(labwall_server: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "hot.json"
    scenario.write_text(json.dumps({"gpus": [
        {"name": "Hot GPU (simulated)", "readings": {"temperature_c": 97}},
        {"name": "Cool GPU (simulated)", "readings": {"temperature_c": 45}},
    ]}))  # fmt: skip
    server = labwall_server(
        config={
            "gpu": {"simulated_scenario": str(scenario)},
            "host": {"enabled": False},
            "alerts": {"gpu_hot": {"for_s": 1}},
        },
        args=["--demo"],
    )

    def raised_event() -> bool:
        events = server.get("/api/events").json()["events"]
        return any(e["source"] == "alerts" and "GPU 0 at 97 °C" in e["text"] for e in events)

    wait_for(raised_event, timeout=15, what="the gpu_hot alert event")
    response = server.get("/api/alerts")
    assert response.status_code == 200, (
        f"GET /api/alerts answered {response.status_code}: monitor/web/server.py must call "
        "register_alerts_api(app, monitor.store)"
    )
    body = response.json()
    assert [a["id"] for a in body["active"]] == ["gpu_hot:gpu0"]
    assert body["active"][0]["message"] == "GPU 0 at 97 °C (alert at 85 °C)"
    assert server.get("/healthz").json()["collectors"]["alerts"]["state"] == "ok"
