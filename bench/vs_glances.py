"""labwall against Glances' web UI (`glances -w`, from PyPI), both at a 1 s refresh, each with one
real headless Chromium open on its page, measured in the same run.

They run one after the other, not side by side: on a 2-core machine two servers and two browsers
at once steal CPU from each other, and each one's figures would depend on the other's; one after
the other, each gets the same machine. The machine's other load during each window is printed
so that the two windows can be compared (on a shared machine it is not zero).

- labwall, twice: `main.py` with its own config: simulated GPUs (8; there is no GPU here: demo
  mode's GPU backend, without the demo trainer process, which is a workload and not the monitor),
  real host collector, GPU and host interval 1 s, wall flush 1 s, no run roots; then the same
  with the GPU collector off, host only, which is all Glances can see on this machine (the
  simulated GPUs cost labwall CPU that a real driver's calls would replace, not add to).
- Glances 4 (GLANCES_SPEC), installed by this script into .bench/glances-venv when missing:
  `glances -w -B 127.0.0.1 -p PORT -t 1 --disable-autodiscover --disable-check-update` — web
  server on loopback, 1 s refresh (its web UI polls /api/4/all and /api/4/all/views every
  max(1, -t) s; its stats cache, --cached-time, is 1 s by default), no zeroconf announce, no
  PyPI check. It starts cleanly as root and without a GPU (its GPU plugin shows nothing).

For each: CPU seconds of the server process and its children over the window, its RSS (peak of
1 s samples, and at the end), the CPU of the browser's processes (all of that Chromium, and its
renderers alone), the page's main-thread busy time (CDP Performance.getMetrics TaskDuration),
and the bytes the page pulls per refresh (CDP: HTTP bodies as sent on the wire, compressed, plus
headers; websocket frame payloads). A refresh is one `update` message for labwall and one poll
of /api/4/all for Glances.

    .venv/bin/python bench/vs_glances.py [--quick] [--duration SECONDS]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test harness's helpers

from browser_support import FULL_HD, launched_browser, wait_live
from support import ROOT, LabwallServer, free_port

GLANCES_SPEC = "glances[web]==4.5.8"  # the web extra brings FastAPI, uvicorn and Jinja2 for -w
GLANCES_VENV = ROOT / ".bench" / "glances-venv"
TARGET_CPU_RATIO = 0.25
GPUS = 8  # simulated, as in the other wall benchmarks
SETTLE_S = 3.0  # after the page is live, before the window opens: first-load work is not steady state


# -- the two servers ------------------------------------------------------------------------------------
def ensure_glances() -> Path:
    """The glances executable in its own venv (its dependencies must not touch labwall's)."""
    glances = GLANCES_VENV / "bin" / "glances"
    if glances.exists():
        return glances
    print(f"installing {GLANCES_SPEC} into {GLANCES_VENV.relative_to(ROOT)} (PyPI) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(GLANCES_VENV)], check=True)
    pip = subprocess.run([str(GLANCES_VENV / "bin" / "pip"), "install", "--quiet", GLANCES_SPEC],
                         capture_output=True, text=True)
    if pip.returncode != 0 or not glances.exists():
        raise SystemExit(f"could not install {GLANCES_SPEC} (needs PyPI):\n{pip.stdout[-2000:]}{pip.stderr[-2000:]}")
    return glances


@dataclass
class Subject:
    """One server under test: how to reach its page, tell when the page is live, count a refresh."""

    name: str
    process: psutil.Process
    page_url: str
    wait_page: Callable[[Any], None]
    is_refresh: Callable[[str], bool]  # given a websocket payload or an HTTP URL


@contextmanager
def labwall_server(gpus: int) -> Iterator[Subject]:
    """`gpus` simulated GPUs, or none: the GPU collector off, as Glances has no GPU to read here."""
    gpu = {"backend": "simulated", "simulated_count": gpus, "interval_s": 1.0} if gpus else {"enabled": False}
    with tempfile.TemporaryDirectory(prefix="labwall-vs-glances-") as tmp:
        server = LabwallServer(Path(tmp), {"gpu": gpu, "host": {"interval_s": 1.0}, "wall": {"flush_interval_s": 1.0}})
        server.start()
        try:
            assert server.proc is not None
            yield Subject(f"labwall, {gpus} GPUs" if gpus else "labwall, no GPU", psutil.Process(server.proc.pid),
                          server.url + "/", wait_live, lambda item: item.startswith('42["update"'))
        finally:
            server.stop()


@contextmanager
def glances_server(glances: Path) -> Iterator[Subject]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="glances-") as tmp:
        log = Path(tmp) / "glances.out"
        proc = subprocess.Popen(
            [str(glances), "-w", "-B", "127.0.0.1", "-p", str(port), "-t", "1",
             "--disable-autodiscover", "--disable-check-update"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=tmp,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"glances exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
                try:
                    if httpx.get(url + "/api/4/status", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"glances did not answer within 60 s:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)

            def wait_page(page: Any) -> None:
                # drawn from its stats: the process table has rows and the CPU panel its figures
                page.wait_for_function("() => document.querySelectorAll('#processlist-table tr').length > 2 && "
                                       "/CPU/.test(document.querySelector('#cpu')?.innerText || '')", timeout=30_000)

            yield Subject("glances", psutil.Process(proc.pid), url + "/", wait_page,
                          lambda item: item.split("?")[0].endswith("/api/4/all"))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# -- measuring --------------------------------------------------------------------------------------------
def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass  # a process that ended is left out of both ends of the window alike as far as possible
    return total


def tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def chromium_processes() -> list[psutil.Process]:
    """This benchmark's Chromium (the only one below this process), and which of them render pages."""
    return [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]


def is_renderer(p: psutil.Process) -> bool:
    try:
        return "--type=renderer" in p.cmdline()
    except psutil.Error:
        return False


class Sampler(threading.Thread):
    """RSS of the server (and its children) once a second until stopped; the peak."""

    def __init__(self, process: psutil.Process) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.process = process
        self.peak = 0
        self.done = threading.Event()

    def rss(self) -> int:
        total = 0
        for p in tree(self.process):
            with suppress(psutil.Error):  # a child that just ended
                total += p.memory_info().rss
        return total

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.rss())
            if self.done.wait(1.0):
                return


@dataclass
class Traffic:
    """What the page receives, from CDP Network events."""

    urls: dict[str, str] = field(default_factory=dict)
    http_bytes: int = 0
    ws_bytes: int = 0
    refreshes: int = 0
    ws_extensions: str = ""
    counting: bool = False

    def attach(self, cdp: Any, is_refresh: Callable[[str], bool]) -> None:
        def sent(e: dict[str, Any]) -> None:
            self.urls[e["requestId"]] = e["request"]["url"]

        def finished(e: dict[str, Any]) -> None:
            url = self.urls.pop(e["requestId"], "")
            if self.counting:
                self.http_bytes += int(e["encodedDataLength"])
                self.refreshes += is_refresh(url)

        def frame(e: dict[str, Any]) -> None:
            payload = e["response"]["payloadData"]
            if self.counting and not payload.startswith(("2", "3")):  # engine.io pings are not the page's
                self.ws_bytes += len(payload.encode())
                self.refreshes += is_refresh(payload)

        def handshake(e: dict[str, Any]) -> None:
            headers = {k.lower(): v for k, v in e["response"].get("headers", {}).items()}
            self.ws_extensions = headers.get("sec-websocket-extensions", "")

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.loadingFinished", finished)
        cdp.on("Network.webSocketFrameReceived", frame)
        cdp.on("Network.webSocketHandshakeResponseReceived", handshake)


def busy_cpu_seconds() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def task_duration(cdp: Any) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return float(metrics["TaskDuration"])


def measure(subject: Subject, seconds: float, viewport: dict[str, int] | None = None,
            throttle: float = 1.0) -> dict[str, Any]:
    """One window on `subject` in a fresh Chromium; `throttle` > 1 slows its CPU (CDP) for a small kiosk PC."""
    with launched_browser() as browser:
        page = browser.new_context(viewport=viewport or FULL_HD).new_page()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Performance.enable")
        traffic = Traffic()
        traffic.attach(cdp, subject.is_refresh)
        page.goto(subject.page_url)
        subject.wait_page(page)
        if throttle != 1:
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        page.wait_for_timeout(SETTLE_S * 1000)

        chromium = chromium_processes()
        renderers = [p for p in chromium if is_renderer(p)]
        ours = [psutil.Process(), *psutil.Process().children(recursive=True)]  # bench, driver, server, browser
        sampler = Sampler(subject.process)
        server0, chrome0, render0 = cpu_seconds(tree(subject.process)), cpu_seconds(chromium), cpu_seconds(renderers)
        ours0, busy0, task0, t0 = cpu_seconds(ours), busy_cpu_seconds(), task_duration(cdp), time.monotonic()
        traffic.counting = True
        sampler.start()
        page.wait_for_timeout(seconds * 1000)  # the measuring window; the page keeps running meanwhile
        traffic.counting = False
        elapsed = time.monotonic() - t0
        task1 = task_duration(cdp)
        server1, chrome1, render1 = cpu_seconds(tree(subject.process)), cpu_seconds(chromium), cpu_seconds(renderers)
        ours1, busy1 = cpu_seconds(ours), busy_cpu_seconds()
        sampler.done.set()
        sampler.join(5)
        end_rss = sampler.rss()
        alive = page.evaluate("() => document.body.innerText.length") > 0
    server, browser_cpu = server1 - server0, chrome1 - chrome0
    other = (busy1 - busy0) - (ours1 - ours0)  # what the other programs on this machine used meanwhile
    received = traffic.http_bytes + traffic.ws_bytes
    return {
        "name": subject.name, "seconds": elapsed, "server_cpu_s": server,
        "server_cpu_pct": 100 * server / elapsed, "server_ms_per_refresh": 1000 * server / max(1, traffic.refreshes),
        "rss_peak": max(sampler.peak, end_rss), "rss_end": end_rss,
        "browser_cpu_pct": 100 * browser_cpu / elapsed, "renderer_cpu_pct": 100 * (render1 - render0) / elapsed,
        "main_thread_pct": 100 * (task1 - task0) / elapsed, "refreshes": traffic.refreshes,
        "bytes_per_refresh": received / max(1, traffic.refreshes), "bytes_per_s": received / elapsed,
        "http_bytes": traffic.http_bytes, "ws_bytes": traffic.ws_bytes, "ws_extensions": traffic.ws_extensions,
        "other_load_pct": 100 * max(0.0, other) / elapsed, "alive": alive,
    }


# -- reporting ---------------------------------------------------------------------------------------------
ROWS = [
    ("server CPU, % of one core", "server_cpu_pct", "{:.2f}"),
    ("server CPU seconds", "server_cpu_s", "{:.1f}"),
    ("server CPU ms per refresh", "server_ms_per_refresh", "{:.1f}"),
    ("server RSS peak, MB", "rss_peak", "{:.1f}"),
    ("server RSS at end, MB", "rss_end", "{:.1f}"),
    ("browser CPU (all Chromium), %", "browser_cpu_pct", "{:.2f}"),
    ("browser renderer CPU, %", "renderer_cpu_pct", "{:.2f}"),
    ("page main thread busy, %", "main_thread_pct", "{:.2f}"),
    ("refreshes in the window", "refreshes", "{:.0f}"),
    ("bytes per refresh", "bytes_per_refresh", "{:,.0f}"),
    ("bytes per second", "bytes_per_s", "{:,.0f}"),
    ("other load on the machine, %", "other_load_pct", "{:.1f}"),
]


def value(result: dict[str, Any], key: str) -> float:
    v = result[key]
    return v / 2**20 if key.startswith("rss") else v


def print_table(labs: list[dict[str, Any]], gl: dict[str, Any]) -> None:
    """One column per run, then the ratio of each labwall run to Glances (in the same order)."""
    heads = [*(r["name"] for r in labs), "glances", *(f"{r['name']}/glances" for r in labs)]
    print(f"{'figure':<32}" + "".join(f"{h:>{max(14, len(h) + 2)}}" for h in heads))
    for label, key, fmt in ROWS:
        b = value(gl, key)
        cells = [fmt.format(value(r, key)) for r in labs] + [fmt.format(b)]
        for r in labs:
            no_ratio = not b or key in ("refreshes", "other_load_pct", "server_cpu_s")
            cells.append("" if no_ratio else f"{value(r, key) / b:.3f}")
        print(f"{label:<32}" + "".join(f"{c:>{max(14, len(h) + 2)}}" for c, h in zip(cells, heads, strict=True)))


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 s per server instead of 300 s")
    parser.add_argument("--duration", type=float, help="measuring window per server, seconds (default 300)")
    args = parser.parse_args()
    seconds = args.duration or (8.0 if args.quick else 300.0)
    if seconds < 5:
        raise SystemExit(f"--duration must be at least 5 s (got {seconds:g}): a window needs several refreshes")
    glances = ensure_glances()
    version = subprocess.run([str(glances), "-V"], capture_output=True, text=True).stdout.split("\n")[0].split()[-1]
    print(f"vs_glances: {seconds:g} s window each, one after the other (labwall with {GPUS} simulated GPUs, "
          f"labwall without GPUs, then Glances), one headless "
          f"Chromium {FULL_HD['width']}x{FULL_HD['height']} per page; {platform.node()}, {psutil.cpu_count()} CPUs, "
          f"{len(psutil.pids())} processes running")
    print(f"labwall: DEMO MODE, {GPUS} simulated GPUs (no GPU here) + real host, 1 s collectors, 1 s wall flush; "
          "then with the GPU collector off (host only: what Glances can see on this machine)")
    print(f"glances: Glances {version} -w -t 1 --disable-autodiscover --disable-check-update, "
          "web UI refresh 1 s (no GPU here: its GPU plugin is empty)")
    labs = []
    for gpus in (GPUS, 0):
        with labwall_server(gpus) as subject:
            labs.append(measure(subject, seconds))
    with glances_server(glances) as subject:
        gl = measure(subject, seconds)
    print_table(labs, gl)
    lab, bare = labs
    print(f"labwall bytes: {lab['ws_bytes']:,} websocket payload + {lab['http_bytes']:,} HTTP; websocket "
          f"extensions: {lab['ws_extensions'] or 'none'} (payload counted before any compression); "
          f"glances bytes: {gl['http_bytes']:,} HTTP as received (gzip) + {gl['ws_bytes']:,} websocket")
    print(f"pages still live at the end: labwall {lab['alive'] and bare['alive']}, glances {gl['alive']}")
    print(f"ratio server CPU labwall/glances: {ratio(lab['server_cpu_pct'], gl['server_cpu_pct']):.3f} "
          f"with {GPUS} simulated GPUs, {ratio(bare['server_cpu_pct'], gl['server_cpu_pct']):.3f} without GPUs "
          f"(target <= {TARGET_CPU_RATIO})")
    print(f"ratio browser CPU labwall/glances: {ratio(lab['browser_cpu_pct'], gl['browser_cpu_pct']):.3f} "
          f"with {GPUS} simulated GPUs, {ratio(bare['browser_cpu_pct'], gl['browser_cpu_pct']):.3f} without")
    print(f"ratio bytes per refresh labwall/glances: {ratio(lab['bytes_per_refresh'], gl['bytes_per_refresh']):.3f} "
          f"with {GPUS} simulated GPUs, {ratio(bare['bytes_per_refresh'], gl['bytes_per_refresh']):.3f} without")


if __name__ == "__main__":
    main()
