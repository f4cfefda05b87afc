"""config.yaml validation: every bad file stops with the key, the value and the reason."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from monitor.config import ConfigError, load_config


def write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems(tmp_path: Path, text: str | bytes) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_shipped_config_is_valid_and_matches_defaults() -> None:
    config = load_config(ROOT / "config.yaml")
    assert config.server.bind == "0.0.0.0"
    assert config.server.port == 8080
    assert config.host_label == socket.gethostname()
    assert config.gpu.backend == "nvml"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.history.window_s == 600
    assert config.gpu.interval_s == 1.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu:\n  interval_s: -1\n", ["gpu.interval_s: -1 — must be > 0"]),
        ("server:\n  port: 70000\n", ["server.port: 70000 — must be <= 65535"]),
        ("server:\n  port: http\n", ["server.port: 'http' — input should be a valid integer"]),
        ("gpu:\n  intervall_s: 2\n", ["gpu.intervall_s: unknown key"]),
        ("colour: red\n", ["colour: unknown key"]),
        ("gpu:\n  backend: cuda\n", ["gpu.backend: 'cuda' — input should be 'nvml' or 'simulated'"]),
        ("thresholds:\n  disk_ratio: 1.5\n", ["thresholds.disk_ratio: 1.5 — must be <= 1"]),
        ("host:\n  interval_s: .nan\n", ["host.interval_s: .nan — must be a finite number"]),
        ("redaction:\n  extra_patterns: ['(unclosed']\n",
         ["redaction.extra_patterns: [(unclosed] — '(unclosed' is not a valid regular expression"]),
        ("gpu: 5\n", ["gpu: 5 — input should be a valid dictionary or instance of GpuConfig"]),
        ("host_label: ''\n", ["host_label: '' — must not be empty"]),
        ("history:\n  window_s: 0.5\n", ["history.window_s (0.5) is shorter than the fastest collector interval"]),
        ("- just\n- a list\n", ["(top level): must be a mapping of keys to values, not list"]),
        ("gpu:\n  interval_s: 1\n   bad_indent: 2\n", ["YAML syntax error at line 3, column"]),
        ("gpu:\n  simulated_scenario: /nonexistent/scenario.json\n",
         ["gpu.simulated_scenario: '/nonexistent/scenario.json' — file '/nonexistent/scenario.json' not found"]),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_bad_file_names_key_value_and_reason(tmp_path: Path, text: str, expected: list[str]) -> None:
    found = problems(tmp_path, text)
    assert len(found) == len(expected), found
    for line, start in zip(found, expected, strict=True):
        assert start in line, f"{start!r} not in {line!r}"


def test_unusable_simulated_scenario_is_a_config_error(tmp_path: Path) -> None:
    scenario = write(tmp_path, '{"gpus": [{"name": "x", "processes": [{"pid": "one"}]}]}', "scenario.json")
    found = problems(tmp_path, f"gpu:\n  simulated_scenario: {scenario}\n")
    assert len(found) == 1
    assert found[0].startswith("gpu.simulated_scenario: '")
    assert "gpus[0].processes[0] needs an integer 'pid'" in found[0]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    found = problems(tmp_path, "gpu:\n  interval_s: 0\n  colour: 1\nserver:\n  port: -5\n")
    assert sorted(line.split(":")[0] for line in found) == ["gpu.colour", "gpu.interval_s", "server.port"]


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "file not found" in info.value.render()
    assert str(tmp_path / "nope.yaml") in info.value.render()


def test_non_utf8_file_says_so(tmp_path: Path) -> None:
    assert "is not UTF-8 text" in problems(tmp_path, b"gpu:\n  backend: \xff\xfe\n")[0]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_check_config_exits_0_for_a_good_file() -> None:
    result = run_main("--config", str(ROOT / "config.yaml"), "--check-config")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def test_check_config_exits_1_with_the_key_for_a_bad_file(tmp_path: Path) -> None:
    path = write(tmp_path, "gpu:\n  interval_s: -1\n")
    result = run_main("--config", str(path), "--check-config")
    assert result.returncode == 1
    assert "gpu.interval_s: -1 — must be > 0" in result.stderr


def test_bad_config_stops_start_up_before_serving(tmp_path: Path) -> None:
    result = run_main("--config", str(write(tmp_path, "server:\n  prot: 1\n")))
    assert result.returncode == 1
    assert "server.prot: unknown key" in result.stderr


def test_command_line_overrides_are_validated(tmp_path: Path) -> None:
    result = run_main("--config", str(write(tmp_path, "")), "--port", "0", "--check-config")
    assert result.returncode == 1
    assert "port: 0 — must be >= 1" in result.stderr


def test_command_line_overrides_apply(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from main import parse_args, resolve_config

    args = parse_args(["--config", str(write(tmp_path, "runs:\n  roots: [/a]\n")), "--host", "127.0.0.1",
                       "--port", "9999", "--runs", "/b", "--runs", "/c", "--demo"])
    config = resolve_config(args)
    assert (config.server.bind, config.server.port) == ("127.0.0.1", 9999)
    assert [str(p) for p in config.runs.roots] == ["/a", "/b", "/c"]
    assert config.gpu.backend == "simulated"
