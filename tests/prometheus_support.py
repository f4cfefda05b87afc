"""A real Prometheus server for tests and benchmarks: Debian's `prometheus` binary (installed by
tests/ensure_prometheus.sh) on a free loopback port, with a generated config and a temporary TSDB.

    with PrometheusServer(workdir, ["127.0.0.1:8081", "127.0.0.1:8082"]) as prom:
        prom.query('labwall_gpu_utilization_ratio{host="gpu-1"}')
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml
from support import free_port, wait_for

JOB = "labwall"


class PrometheusError(RuntimeError):
    """Prometheus answered a query with an error, or could not be started."""


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusError("no `prometheus` binary on PATH: run `bash tests/ensure_prometheus.sh` (make test does)")
    return found


def scrape_config(targets: list[str], interval_s: float = 1.0, job: str = JOB) -> dict[str, Any]:
    """One static job; honor_labels keeps the targets' own `host` label (and job/instance if they set them)."""
    interval = f"{round(interval_s * 1000)}ms"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": job, "honor_labels": True, "metrics_path": "/metrics",
             "static_configs": [{"targets": list(targets)}]},
        ],
    }


class PrometheusServer:
    """`prometheus` as a subprocess on 127.0.0.1:<free port>, scraping `targets` ("host:port")."""

    def __init__(self, workdir: Path, targets: list[str], interval_s: float = 1.0, job: str = JOB) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.interval_s = interval_s
        self.job = job
        self.config_path = workdir / f"prometheus-{self.port}.yml"
        self.config_path.write_text(yaml.safe_dump(scrape_config(targets, interval_s, job)))
        self.data_dir = workdir / f"prometheus-data-{self.port}"
        self.log_path = workdir / f"prometheus-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> PrometheusServer:
        command = [
            prometheus_binary(),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(command, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}: {self.logs()[-2000:]}")
            return httpx.get(self.url + "/-/ready", timeout=2).status_code == 200

        wait_for(ready, timeout, 0.1, what=f"prometheus on port {self.port} (log: {self.log_path})")

    def _api(self, path: str, params: dict[str, Any]) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: [{"metric": {labels}, "value": [time, "text"]}] (or "values" for a range selector)."""
        return list(self._api("/api/v1/query", {"query": promql})["result"])

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        return list(self._api("/api/v1/query_range", {"query": promql, "start": start, "end": end,
                                                     "step": step_s})["result"])

    def values(self, promql: str, by: str) -> dict[str, float]:
        """An instant query's values keyed by one label, e.g. values('up', by="instance")."""
        return {r["metric"].get(by, ""): float(r["value"][1]) for r in self.query(promql)}

    def targets(self) -> list[dict[str, Any]]:
        return list(self._api("/api/v1/targets", {"state": "active"})["activeTargets"])

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; `start()` starts it again on the same port with the same data."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)

    def __enter__(self) -> PrometheusServer:
        return self.start() if self.proc is None else self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
