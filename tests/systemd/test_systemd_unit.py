"""The unit files: `systemd-analyze verify` clean, `systemd-analyze security` exposure within target,
and the directives the service relies on present."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")

UNIT = ROOT / "systemd" / "labwall.service"
KIOSK = ROOT / "systemd" / "labwall-kiosk.service"
INSTALLED_PYTHON = "/opt/labwall/venv/bin/python"
MAX_EXPOSURE = 2.5


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, env=env)


def directives(path: Path) -> dict[str, list[str]]:
    """section.Key -> every value it is given (systemd allows repeating keys)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def test_unit_verifies_clean(tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists; on this machine the app's venv is the repo's.
    unit = tmp_path / "labwall.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_PYTHON, sys.executable))
    result = analyze("verify", str(unit))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_kiosk_user_unit_verifies_clean(tmp_path: Path) -> None:
    if shutil.which("chromium") is None or not Path("/usr/bin/curl").exists():
        unit = tmp_path / "labwall-kiosk.service"
        text = KIOSK.read_text().replace("/usr/bin/chromium", "/bin/sh").replace("/usr/bin/curl", "/bin/sh")
        unit.write_text(text)
    else:
        unit = KIOSK
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)}
    result = analyze("--user", "verify", str(unit), env=env)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_exposure_is_within_target() -> None:
    result = analyze("security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}", str(UNIT))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for labwall\.service: (\d+\.\d+)", output)
    assert match, result.stdout[-2000:] + result.stderr
    exposure = float(match.group(1))
    assert result.returncode == 0, f"exposure {exposure} above the threshold {MAX_EXPOSURE}"
    assert exposure <= MAX_EXPOSURE


def test_the_directives_the_service_relies_on() -> None:
    d = directives(UNIT)
    one = {key: values[-1] for key, values in d.items()}
    assert one["Service.Type"] == "notify"
    assert one["Service.NotifyAccess"] == "main"
    assert one["Service.Restart"] == "on-failure"
    assert one["Service.User"] == "labwall"
    assert one["Service.ProtectSystem"] == "strict"
    assert one["Service.ProtectHome"] == "read-only"
    assert one["Service.CapabilityBoundingSet"] == ""
    assert one["Service.DevicePolicy"] == "closed"
    allowed = d["Service.DeviceAllow"]
    for device in ("/dev/nvidiactl rw", "char-nvidia-frontend rw", "/dev/nvidia-uvm rw"):
        assert device in allowed
    # Other users' processes stay visible: that is what the wall is for.
    assert one.get("Service.ProtectProc", "default") == "default"
    assert one.get("Service.ProcSubset", "all") == "all"
    assert one.get("Service.PrivateUsers", "no") == "no"
    assert "Service.PrivateDevices" not in d, "PrivateDevices= hides /dev/nvidia*"
    # The watchdog has to allow for the ping interval labwall uses (a third of it).
    assert one["Service.WatchdogSec"].endswith("s") and int(one["Service.WatchdogSec"][:-1]) >= 10
    pre = one["Service.ExecStartPre"]
    assert pre.endswith("--check-config") and pre.split()[:3] == one["Service.ExecStart"].split()[:3]
    # labwall stops within 5 s; systemd waits a little longer before SIGKILL.
    assert int(one["Service.TimeoutStopSec"].rstrip("s")) > 5


def test_kiosk_restarts_forever() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(KIOSK.read_text().replace("\\\n", " "))
    assert parser["Service"]["Restart"] == "always"
    assert parser["Unit"]["StartLimitIntervalSec"] == "0"
    assert "--kiosk" in parser["Service"]["ExecStart"] and "${LABWALL_URL}" in parser["Service"]["ExecStart"]
