"""Host collector: CPU, load, memory, swap, disk and network throughput, temperatures and the disk
usage of the run roots, read through psutil without blocking and without walking processes.

The disk usage of a run root is read in a thread of its own: statvfs on a hung network mount blocks
in the kernel for minutes, and one dead NFS server must not stall the CPU and memory readings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from collectors.base import Collector
from collectors.registry import CollectorSpec
from monitor.model.documents import HostField, Source
from monitor.model.numbers import finite
from monitor.model.settings import CollectorContext, PositiveSeconds, Section
from monitor.model.store import Store

EXCLUDED_INTERFACES = frozenset({"lo"})
# Traffic to containers crosses these virtual devices as well as the real NIC; counting them too
# would double the host's network rate on a GPU server running Docker or Kubernetes.
VIRTUAL_INTERFACE_PREFIXES = (
    "veth", "docker", "br-", "virbr", "ifb", "cni", "flannel", "cali", "vxlan", "tun",
)
# hwmon chips that measure the CPU itself (Intel, AMD, ARM SoCs); the hottest is "the CPU temperature".
CPU_SENSOR_CHIPS = frozenset(
    {"coretemp", "k10temp", "zenpower", "x86_pkg_temp", "cpu_thermal", "cpu-thermal", "soc_thermal"}
)


class CounterRate:
    """Per-second rate of one cumulative counter between successive readings.

    The first reading gives None. A counter that goes backwards (interface reset, wrap, device
    removed) gives None for that interval and becomes the new base, never a negative or giant rate.
    """

    __slots__ = ("_time", "_value")

    def __init__(self) -> None:
        self._value: float | None = None
        self._time: float | None = None

    def reset(self) -> None:
        self._value = self._time = None

    def update(self, value: float | None, t: float) -> float | None:
        """Feed the reading `value` taken at monotonic time `t`; returns units (bytes) per second."""
        if value is None:
            self.reset()
            return None
        prev_value, prev_time = self._value, self._time
        if prev_value is None or prev_time is None:
            self._value, self._time = value, t
            return None
        dt = t - prev_time
        if dt == 0:
            return None  # no time has passed: keep the older base so the next interval is measured whole
        self._value, self._time = value, t
        delta = value - prev_value
        if dt < 0 or delta < 0:
            return None
        return delta / dt


class CounterRates:
    """Summed rate of a set of named counters (one per interface), each tracked on its own so that one
    counter appearing, vanishing or resetting only drops that counter out of that one interval."""

    __slots__ = ("_rates",)

    def __init__(self) -> None:
        self._rates: dict[str, CounterRate] = {}

    def update(self, values: Mapping[str, float] | None, t: float) -> float | None:
        """Sum of the rates of every counter that has one; None when none has (first reading, no source)."""
        if values is None:
            self._rates.clear()
            return None
        for gone in self._rates.keys() - values.keys():
            del self._rates[gone]
        total: float | None = None
        for key, value in values.items():
            rate = self._rates.setdefault(key, CounterRate()).update(value, t)
            if rate is not None:
                total = rate if total is None else total + rate
        return total


def read_temperatures() -> dict[str, float] | None:
    """Every temperature sensor as {"<chip>/<label>": celsius}; None when the machine exposes none."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return None
    try:
        chips = reader()
    except Exception:  # sensor drivers fail in many ways; temperatures are optional, never fatal
        return None
    found: dict[str, float] = {}
    for chip, readings in (chips or {}).items():
        for index, reading in enumerate(readings):
            celsius = finite(getattr(reading, "current", None))
            if celsius is None:
                continue
            base = f"{chip}/{reading.label or f'temp{index + 1}'}"
            name, n = base, 1
            while name in found:  # psutil merges chips of the same name, so labels can repeat
                n += 1
                name = f"{base}#{n}"
            found[name] = celsius
    return found or None


def cpu_temperature(temperatures: Mapping[str, float] | None) -> float | None:
    """The hottest reading of a CPU package/core sensor, or None when there is none."""
    cpu = [c for name, c in (temperatures or {}).items() if name.split("/", 1)[0] in CPU_SENSOR_CHIPS]
    return max(cpu) if cpu else None


def read_disk_usage(path: Path) -> dict[str, Any]:
    """Usage of the filesystem holding `path`, or {"path", "error"} when it cannot be read."""
    try:
        usage = psutil.disk_usage(str(path))
    except FileNotFoundError:
        return {"path": str(path), "error": "not found"}
    except PermissionError:
        return {"path": str(path), "error": "permission denied"}
    except OSError as exc:
        return {"path": str(path), "error": exc.strerror or type(exc).__name__}
    # used / (used + free) matches `df`: blocks reserved for root are not space a run can use.
    usable = usage.used + usage.free
    return {
        "path": str(path),
        "total_bytes": int(usage.total),
        "used_bytes": int(usage.used),
        "free_bytes": int(usage.free),
        "used_ratio": usage.used / usable if usable > 0 else 0.0,
    }


class _DiskRead:
    """One disk-usage reading running in its own daemon thread (a hung one never blocks shutdown)."""

    def __init__(self, path: Path, read: Callable[[Path], dict[str, Any]], started: float) -> None:
        self.path = path
        self.started = started
        self.result: dict[str, Any] | None = None
        self.done = threading.Event()
        self._read = read
        threading.Thread(target=self._run, name="host-disk-usage", daemon=True).start()

    def _run(self) -> None:
        try:
            self.result = self._read(self.path)
        except Exception as exc:  # a reader that fails must still answer
            self.result = {"path": str(self.path), "error": f"{type(exc).__name__}: {exc}"}
        finally:
            self.done.set()


class DiskUsageReader:
    """Disk usage of each path, each read in its own thread; a tick waits at most `timeout_s` for all
    of them. A read still running shows the path's previous reading for up to `hung_after_s` (a slow
    mount does not flap), then "not responding"; it is not started again until it returns, so a hung
    mount costs one blocked thread, not one per tick."""

    def __init__(
        self,
        paths: Iterable[Path],
        timeout_s: float = 0.5,
        read: Callable[[Path], dict[str, Any]] = read_disk_usage,
        clock: Callable[[], float] = time.monotonic,
        hung_after_s: float = 5.0,
    ) -> None:
        self.paths = list(paths)
        self.timeout_s = timeout_s
        self.hung_after_s = hung_after_s
        self._read = read
        self._clock = clock
        self._pending: dict[Path, _DiskRead] = {}
        self._last: dict[Path, dict[str, Any]] = {}

    def read(self) -> list[dict[str, Any]]:
        start = self._clock()
        for path in self.paths:  # all reads run side by side: one slow path does not delay the others
            if path not in self._pending:
                self._pending[path] = _DiskRead(path, self._read, start)
        deadline = start + self.timeout_s
        results = []
        for path in self.paths:
            pending = self._pending[path]
            pending.done.wait(max(0.0, deadline - self._clock()))
            waited = self._clock() - pending.started
            if pending.done.is_set() and pending.result is not None:
                del self._pending[path]
                results.append(pending.result)
                self._last[path] = pending.result
            elif path in self._last and waited < self.hung_after_s:
                results.append(self._last[path])
            else:
                results.append({"path": str(path), "error": f"not responding for {waited:.0f} s (hung mount?)"})
        return results

    def stuck(self) -> int:
        """Reads still running (each holds one thread)."""
        return sum(1 for p in self._pending.values() if not p.done.is_set())


def disk_problems(disks: list[dict[str, Any]], full_ratio: float) -> list[str]:
    """One line per run-root disk that cannot be read or is at least `full_ratio` full."""
    problems = []
    for d in disks:
        ratio = d.get("used_ratio")
        if d.get("error"):
            problems.append(f"disk of run root {d['path']}: {d['error']}")
        elif isinstance(ratio, float) and ratio >= full_ratio:
            problems.append(f"disk of run root {d['path']} is {100 * ratio:.0f} % full")
    return problems


def _disk_io() -> tuple[int, int] | None:
    try:
        counters = psutil.disk_io_counters(perdisk=False)
    except (OSError, RuntimeError):  # no /proc/diskstats (containers, some VMs)
        return None
    return (counters.read_bytes, counters.write_bytes) if counters is not None else None


def _net_io() -> tuple[dict[str, int], dict[str, int]] | None:
    try:
        nics = psutil.net_io_counters(pernic=True)
    except (OSError, RuntimeError):
        return None
    nics = {
        name: c for name, c in nics.items()
        if name not in EXCLUDED_INTERFACES and not name.startswith(VIRTUAL_INTERFACE_PREFIXES)
    }
    return {n: c.bytes_recv for n, c in nics.items()}, {n: c.bytes_sent for n, c in nics.items()}


class HostCollector(Collector):
    """Samples the host every interval and publishes the "system" state document."""

    name = "host"

    def __init__(
        self,
        store: Store,
        interval_s: float,
        disk_paths: Iterable[Path | str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        disk_full_ratio: float = 0.90,
        disk_timeout_s: float | None = None,
    ) -> None:
        """`disk_full_ratio`: a run root's disk this full makes the health degraded (thresholds.disk_ratio);
        `disk_timeout_s`: how long a tick waits for disk usage (default: a quarter interval, ≤ 0.5 s)."""
        super().__init__(store, interval_s)
        self.disk_paths = list(dict.fromkeys(Path(p) for p in disk_paths or ()))
        self.disk_full_ratio = disk_full_ratio
        timeout = disk_timeout_s if disk_timeout_s is not None else min(0.5, interval_s / 4)
        self.disk_usage = DiskUsageReader(self.disk_paths, timeout)
        self._clock = clock
        self._disk_read = CounterRate()
        self._disk_write = CounterRate()
        self._net_rx = CounterRates()
        self._net_tx = CounterRates()

    def setup(self) -> None:
        # cpu_percent(interval=None) measures since its previous call; prime it so the first tick is real.
        psutil.cpu_percent(percpu=True, interval=None)

    def collect(self, now: float) -> None:
        per_core = [finite(p) or 0.0 for p in psutil.cpu_percent(percpu=True, interval=None)]
        cpu_percent = sum(per_core) / len(per_core) if per_core else 0.0
        load = [float(x) for x in psutil.getloadavg()]
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        # "used" is what is not available: the page cache a job can reclaim does not count as used.
        memory_used = max(0, memory.total - memory.available)
        memory_percent = 100.0 * memory_used / memory.total if memory.total else 0.0

        t = self._clock()
        disk = _disk_io()
        disk_read = self._disk_read.update(disk[0] if disk else None, t)
        disk_write = self._disk_write.update(disk[1] if disk else None, t)
        net = _net_io()
        net_rx = self._net_rx.update(net[0] if net else None, t)
        net_tx = self._net_tx.update(net[1] if net else None, t)

        temperatures = read_temperatures()
        disks = self.disk_usage.read()
        boot_time = float(psutil.boot_time())

        b = self.batch(now)
        b.add("host_cpu_percent", cpu_percent)
        for core, percent in enumerate(per_core):
            b.add("host_cpu_core_percent", percent, core=core)
        b.add("host_load1", load[0])
        b.add("host_load5", load[1])
        b.add("host_load15", load[2])
        b.add("host_memory_used_bytes", memory_used)
        b.add("host_memory_total_bytes", memory.total)
        b.add("host_memory_percent", memory_percent)
        b.add("host_swap_used_bytes", swap.used)
        b.add("host_swap_percent", finite(swap.percent))
        b.add("host_disk_read_bytes_per_second", disk_read)
        b.add("host_disk_write_bytes_per_second", disk_write)
        b.add("host_net_rx_bytes_per_second", net_rx)
        b.add("host_net_tx_bytes_per_second", net_tx)
        for sensor, celsius in (temperatures or {}).items():
            b.add("host_temperature_celsius", celsius, sensor=sensor)
        for entry in disks:
            b.add("host_path_disk_used_ratio", entry.get("used_ratio"), path=entry["path"])
        self.push(b)

        self.store.set_state(
            Source.HOST,
            {
                HostField.CPU_PERCENT: cpu_percent,
                HostField.CPU_PER_CORE_PERCENT: per_core,
                HostField.CPU_COUNT: psutil.cpu_count() or len(per_core),
                HostField.LOAD_AVERAGE: load,
                HostField.MEMORY_TOTAL_BYTES: int(memory.total),
                HostField.MEMORY_USED_BYTES: int(memory_used),
                HostField.MEMORY_AVAILABLE_BYTES: int(memory.available),
                HostField.MEMORY_PERCENT: memory_percent,
                HostField.SWAP_TOTAL_BYTES: int(swap.total),
                HostField.SWAP_USED_BYTES: int(swap.used),
                HostField.SWAP_PERCENT: finite(swap.percent) or 0.0,
                HostField.DISK_READ_BYTES_PER_SECOND: disk_read,
                HostField.DISK_WRITE_BYTES_PER_SECOND: disk_write,
                HostField.NET_RX_BYTES_PER_SECOND: net_rx,
                HostField.NET_TX_BYTES_PER_SECOND: net_tx,
                HostField.TEMPERATURES: temperatures,
                HostField.CPU_TEMPERATURE_CELSIUS: cpu_temperature(temperatures),
                HostField.DISKS: disks,
                HostField.UPTIME_S: max(0.0, now - boot_time),
                HostField.BOOT_TIME: boot_time,
            },
            now,
        )
        problems = disk_problems(disks, self.disk_full_ratio)
        # Replace rather than mutate: views read the dict from other threads.
        self.health.detail = {"degraded": "; ".join(problems)} if problems else {}


class HostConfig(Section):
    enabled: bool = True
    interval_s: PositiveSeconds = 1.0


def build_host_collector(section: HostConfig, context: CollectorContext) -> HostCollector | None:
    if not section.enabled:
        return None
    return HostCollector(
        context.store, section.interval_s, disk_paths=list(context.run_roots), disk_full_ratio=context.disk_full_ratio
    )


SPEC = CollectorSpec("host", HostConfig, build_host_collector, order=10, feeds_history=True)
