"""XID errors: the GPU collector subscribes each GPU to NVML's XID events, drains them without waiting,
puts them on the GPU's document and in the event log; the gpu_xid alert holds for hold_s per XID."""

from __future__ import annotations

from typing import Any

import pytest
from alerts_support import Lab, make_config

from collectors.gpu.collector import GpuCollector
from collectors.gpu.nvml import NvmlBackend
from collectors.gpu.processes import ProcessLookup
from collectors.gpu.redact import Redactor
from collectors.gpu.xid import KEPT_PER_GPU, MAX_PER_TICK, XID_MEANINGS, xid_text
from monitor.config import ConfigError, parse_config
from monitor.model.store import Store

try:  # tests/ is on sys.path under pytest's default import mode
    from fake_nvml import FakeNvml
except ImportError:  # pragma: no cover
    from tests.fake_nvml import FakeNvml

T0 = 1_000_000.0


def make(count: int = 4) -> tuple[FakeNvml, Store, GpuCollector, list[float]]:
    fake = FakeNvml(count)
    slept: list[float] = []
    fake.sleep = slept.append  # any wait on an event set would show here
    store = Store("testhost")
    lookup = ProcessLookup(Redactor(), resolver=fake.process_info)
    collector = GpuCollector(store, 1.0, NvmlBackend(fake), processes=lookup, clock=lambda: T0)
    collector.setup()
    return fake, store, collector, slept


def gpus(store: Store) -> list[dict[str, Any]]:
    found = store.state("gpu")
    assert found is not None
    return found[1]["gpus"]


def gpu_events(store: Store) -> list[tuple[str, str]]:
    return [(e.level, e.text) for e in store.events.read_after(0) if e.source == "gpu"]


def test_an_xid_lands_on_its_gpu_and_in_the_event_log_once() -> None:
    fake, store, collector, slept = make()
    fake.xid(2, 79)
    fake.xid(2, 48)
    collector.collect(T0)
    assert gpus(store)[2]["xid_errors"] == [
        {"time": T0, "code": 79, "meaning": "fallen off the bus"},
        {"time": T0, "code": 48, "meaning": "double-bit ECC error"},
    ]
    assert [g["xid_errors"] for i, g in enumerate(gpus(store)) if i != 2] == [[], [], []]
    assert gpu_events(store) == [
        ("error", "GPU 2 XID 79: fallen off the bus"),
        ("error", "GPU 2 XID 48: double-bit ECC error"),
    ]
    collector.collect(T0 + 1)  # drained: the next tick finds nothing new, the history stays
    assert len(gpu_events(store)) == 2 and len(gpus(store)[2]["xid_errors"]) == 2
    assert slept == []  # every wait was a 0 ms poll: the tick never blocks on the event sets


def test_well_known_and_unknown_codes_are_worded() -> None:
    assert xid_text(1, 79) == "GPU 1 XID 79: fallen off the bus"
    assert xid_text(0, 999) == "GPU 0 XID 999: see NVIDIA's XID catalog"
    assert {13, 31, 43, 45, 48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120} <= set(XID_MEANINGS)


def test_each_gpu_is_registered_once_per_open_and_released_on_close() -> None:
    fake, store, collector, _ = make()
    assert fake.calls["nvmlDeviceRegisterEvents"] == 4
    for k in range(3):
        collector.collect(T0 + k)
    assert fake.calls["nvmlDeviceRegisterEvents"] == 4  # ticks only drain
    assert fake.calls["nvmlEventSetWait_v2"] == 3 * 4  # one empty poll per GPU per tick

    fake.xid(3, 79)
    fake.lose(3)
    collector.collect(T0 + 3)
    gpu = gpus(store)[3]
    assert gpu["status"] == "lost" and [x["code"] for x in gpu["xid_errors"]] == [79]
    assert gpu_events(store) == [("error", "GPU 3 XID 79: fallen off the bus"), ("error", "GPU 3 lost: GPU is lost")]
    fake.restore(3)
    collector.collect(T0 + 4)
    assert fake.calls["nvmlDeviceRegisterEvents"] == 5  # the re-opened GPU is subscribed afresh
    fake.xid(3, 94)
    collector.collect(T0 + 5)
    assert [x["code"] for x in gpus(store)[3]["xid_errors"]] == [79, 94]  # kept across the loss

    collector.close()
    assert fake._event_sets == [] and fake.initialized == 0


def test_a_gpu_without_xid_events_is_noted_once_and_others_still_report() -> None:
    fake = FakeNvml(3)
    fake.set_unsupported("nvmlDeviceRegisterEvents", index=1)
    store = Store("testhost")
    collector = GpuCollector(store, 1.0, NvmlBackend(fake), clock=lambda: T0)
    collector.setup()
    collector.setup()  # a re-init does not repeat the note
    fake.xid(1, 79)
    fake.xid(0, 63)
    collector.collect(T0)
    notes = [t for level, t in gpu_events(store) if level == "info"]
    assert notes == ["GPU 1 cannot report XID errors (Not Supported); gpu_xid alerts are off for it"]
    assert [len(g["xid_errors"]) for g in gpus(store)] == [1, 0, 0]
    assert all(g["status"] == "ok" for g in gpus(store))  # not an error


def test_a_flood_is_drained_over_ticks_and_the_history_is_bounded() -> None:
    fake, store, collector, _ = make(1)
    for _ in range(MAX_PER_TICK + 8):
        fake.xid(0, 13)
    collector.collect(T0)
    assert len(gpus(store)[0]["xid_errors"]) == KEPT_PER_GPU
    assert len(gpu_events(store)) == MAX_PER_TICK  # the rest waits for the next tick
    collector.collect(T0 + 1)
    assert len(gpu_events(store)) == MAX_PER_TICK + 8


# -- the gpu_xid alert -------------------------------------------------------------------------------


def test_gpu_xid_is_raised_at_once_held_for_hold_s_then_cleared() -> None:
    lab = Lab(make_config({"gpu_xid": {"hold_s": 120}}))
    lab.tick()
    lab.fake.xid(1, 79)
    lab.tick()
    alert = lab.active()["gpu_xid:gpu1"]
    assert (alert["severity"], alert["subject"], alert["title"]) == ("critical", "GPU 1", "GPU 1 XID 79")
    assert alert["message"] == "GPU 1 XID 79: fallen off the bus"
    assert alert["details"]["codes"] == [79]
    assert lab.alert_events() == [("error", "raised — GPU 1 XID 79: fallen off the bus")]
    lab.tick(60)
    lab.fake.xid(1, 48)  # a second XID within the hold: the same alert, now naming both
    lab.tick()
    alert = lab.active()["gpu_xid:gpu1"]
    assert alert["title"] == "GPU 1 XID 48"
    assert alert["message"] == "GPU 1 XID 48: double-bit ECC error (2 XIDs in the last 1 min: 48, 79)"
    lab.tick(119)  # 119 s after the last XID: still held
    assert "gpu_xid:gpu1" in lab.active()
    lab.tick()
    assert not lab.active()
    assert lab.recent()[0]["id"] == "gpu_xid:gpu1"
    assert lab.alert_events()[-1] == ("info", "cleared — GPU 1 XID 48 (active for 3 min)")


def test_ignored_codes_are_logged_but_raise_nothing() -> None:
    lab = Lab(make_config({"gpu_xid": {"ignore_codes": [13, 43]}}))
    lab.fake.xid(0, 13)
    lab.tick()
    assert not lab.active() and not lab.pending()
    assert ("error", "GPU 0 XID 13: graphics engine exception (often a bug in the application)") in [
        (e.level, e.text) for e in lab.store.events.read_after(0)
    ]


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"gpu_xid": {"hold_s": 0}}, "alerts.gpu_xid.hold_s: 0 — must be > 0"),
        ({"gpu_xid": {"ignore_codes": [-1]}}, "alerts.gpu_xid.ignore_codes.0: -1 — must be > 0"),
        ({"gpu_xid": {"hold": 5}}, "alerts.gpu_xid.hold: unknown key"),
    ],
)
def test_bad_gpu_xid_keys_are_named(alerts: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"alerts": alerts})
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith(message)
