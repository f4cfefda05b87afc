"""The runs API on a real server (a `main.py` subprocess) watching a root a writer process fills."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from runs_support import Writer
from support import LabwallServer, wait_for

StartServer = Callable[..., LabwallServer]
SUMMARY_KEYS = {"id", "name", "path", "format", "status", "step", "updated", "metrics", "bad_lines",
                "first_bad_line", "total_steps", "rate_steps_per_s", "eta_s", "gpus"}
TRAVERSALS = [
    "/api/runs/..%2f..%2fetc%2fpasswd",
    "/api/runs/..%2f..%2fetc%2fpasswd/metrics/loss",
    "/api/runs/%2e%2e/metrics/loss",
    "/api/runs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/metrics/loss",
    "/api/runs/..%5c..%5cetc%5cpasswd/metrics/loss",
    "/api/runs/{id}/metrics/..%2f..%2f..%2fetc%2fpasswd",
    "/api/runs/{id}/metrics/%2fetc%2fpasswd",
]


def line(step: int, loss: float) -> str:
    return json.dumps({"step": step, "loss": loss, "lr": 0.001}) + "\n"


def test_runs_api_shapes_cursor_and_404s(tmp_path: Path, writer: Writer, labwall_server: StartServer) -> None:
    root = tmp_path / "runs"
    writer.mkdir(root / "exp1")
    writer.append(root / "exp1" / "metrics.jsonl", line(0, 2.0) + line(1, 1.5) + "{oops\n")
    server = labwall_server(config={"runs": {"roots": [str(root)], "interval_s": 0.05}, "gpu": {"enabled": False}})
    runs = wait_for(lambda: (body := server.get("/api/runs").json()) and body[0]["step"] == 1 and body,
                    timeout=10, what="the run in /api/runs")
    assert len(runs) == 1
    run = runs[0]
    assert set(run) >= SUMMARY_KEYS
    assert (run["name"], run["path"], run["format"], run["status"]) == ("exp1", str(root / "exp1"), "jsonl", "running")
    assert run["metrics"] == ["loss", "lr"] and run["gpus"] == []
    assert run["bad_lines"] == 1 and run["first_bad_line"]["line"] == 3
    assert "/" not in run["id"] and str(root) not in run["id"]
    assert server.get(f"/api/runs/{run['id']}").json()["name"] == "exp1"

    body = server.get(f"/api/runs/{run['id']}/metrics/loss").json()
    assert [p[0] for p in body["points"]] == [0, 1] and [p[2] for p in body["points"]] == [2.0, 1.5]
    assert all(len(p) == 3 and isinstance(p[1], float) for p in body["points"])
    writer.append(root / "exp1" / "metrics.jsonl", line(2, 1.25))
    newer = wait_for(lambda: (b := server.get(f"/api/runs/{run['id']}/metrics/loss",
                                              params={"after": body["cursor"]}).json())["points"] and b,
                     timeout=5, what="the appended point after the cursor")
    assert [p[:1] + p[2:] for p in newer["points"]] == [[2, 1.25]] and newer["reset"] is False

    for path, detail in ((f"/api/runs/{run['id']}/metrics/nope", "no such metric"),
                         ("/api/runs/nope-0000000000/metrics/loss", "no such run"),
                         ("/api/runs/nope-0000000000", "no such run")):
        response = server.get(path)
        assert response.status_code == 404 and response.json()["detail"] == detail
    for template in TRAVERSALS:
        response = httpx.get(server.url + template.format(id=run["id"]), timeout=5)
        assert response.status_code == 404, template
        assert response.headers["content-type"] == "application/json", template
        assert "root:" not in response.text and str(root) not in response.text
    assert httpx.post(server.url + "/api/runs", timeout=5).status_code == 405
    health = server.get("/healthz").json()["collectors"]["runs"]
    assert health["state"] == "ok" and health["runs"] == 1 and health["watch"]["events"] == "on"


def test_runs_flag_adds_a_root(tmp_path: Path, writer: Writer, labwall_server: StartServer) -> None:
    root = tmp_path / "cli-root"
    writer.mkdir(root / "lightning_logs" / "version_0")
    writer.append(root / "lightning_logs" / "version_0" / "metrics.csv", "epoch,step,train_loss\n0,9,0.5\n")
    server = labwall_server(config={"gpu": {"enabled": False}}, args=["--runs", str(root)])
    runs = wait_for(lambda: server.get("/api/runs").json(), timeout=10, what="a run from --runs")
    assert runs[0]["name"] == "lightning_logs/version_0" and runs[0]["format"] == "lightning_csv"
