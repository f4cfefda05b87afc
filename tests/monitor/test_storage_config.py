"""The storage: section of config.yaml: defaults, where the file goes, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from monitor.config import ConfigError, load_config, parse_config


def test_defaults_and_the_shipped_file_agree() -> None:
    shipped = load_config(ROOT / "config.yaml").storage
    assert shipped == parse_config({}).storage
    assert (shipped.enabled, shipped.path, shipped.flush_s) == (True, None, 10.0)
    assert (shipped.minute_retention_days, shipped.hour_retention_days, shipped.queue_max) == (14, 400, 100_000)


def test_the_default_file_is_beside_the_config_or_in_the_state_directory(tmp_path: Path) -> None:
    storage = parse_config({}).storage
    assert storage.file(tmp_path, environ={}) == tmp_path / "data" / "labwall.db"
    systemd = {"STATE_DIRECTORY": "/var/lib/labwall"}
    assert storage.file(tmp_path, environ=systemd) == Path("/var/lib/labwall/labwall.db")
    relative = parse_config({"storage": {"path": "db/wall.db"}}).storage
    assert relative.file(tmp_path, environ={"STATE_DIRECTORY": "/x"}) == tmp_path / "db" / "wall.db"


@pytest.mark.parametrize(("storage", "expected"), [
    ({"flush_s": 0}, "storage.flush_s: 0 — must be >= 0.1"),
    ({"minute_retention_days": -1}, "storage.minute_retention_days: -1 — must be > 0"),
    ({"hour_retention_days": 7}, "hour_retention_days (7) is shorter than minute_retention_days (14)"),
    ({"queue_max": 10}, "storage.queue_max: 10 — must be >= 100"),
    ({"enabled": "sometimes"}, "storage.enabled: 'sometimes' — input should be a valid boolean"),
    ({"pathh": "x"}, "storage.pathh: unknown key"),
])
def test_bad_values_name_the_key_and_the_reason(storage: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"storage": storage})
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_a_directory_is_not_a_database_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be the path of a database file, not a directory"):
        parse_config({"storage": {"path": str(tmp_path)}})


def test_check_config_does_not_create_the_database(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  flush_s: 2\n")
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(config), "--check-config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "data").exists()
