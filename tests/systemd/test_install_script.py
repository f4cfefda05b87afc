"""systemd/install.sh in a throw-away root, with a fake systemctl and a fake venv that log their calls."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

SCRIPT = ROOT / "systemd" / "install.sh"
pytestmark = pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="needs systemd-sysusers")

FAKE_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$FAKE_LOG"
"""

# Creates the venv as stubs that log (no network, no 200 MB of dependencies); anything else goes to
# the real interpreter, which install.sh uses to check its version and read pyproject.toml.
FAKE_PYTHON = f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    echo "python -m venv $3" >> "$FAKE_LOG"
    mkdir -p "$3/bin"
    printf '#!/bin/sh\\necho "venv-python $*" >> "$FAKE_LOG"\\n' > "$3/bin/python"
    printf '#!/bin/sh\\necho "pip $*" >> "$FAKE_LOG"\\n' > "$3/bin/pip"
    chmod +x "$3/bin/python" "$3/bin/pip"
    exit 0
fi
exec {sys.executable} "$@"
"""


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under root with its mode, mtime and content hash: any change shows up."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        state[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns if not path.is_dir() else 0, digest)
    return state


class Installer:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.log = tmp_path / "calls.log"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name, text in (("systemctl", FAKE_SYSTEMCTL), ("python", FAKE_PYTHON)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.env = {
            **os.environ, "DESTDIR": str(self.root), "SYSTEMCTL": str(bin_dir / "systemctl"),
            "PYTHON": str(bin_dir / "python"), "FAKE_LOG": str(self.log),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        result = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


@pytest.fixture
def installer(tmp_path: Path) -> Installer:
    return Installer(tmp_path)


def test_install_puts_every_file_in_place_and_starts_the_unit(installer: Installer) -> None:
    out = installer.run("install")
    p = installer.path

    unit = p("/etc/systemd/system/labwall.service")
    assert unit.read_bytes() == (ROOT / "systemd" / "labwall.service").read_bytes()
    assert p("/opt/labwall/app/main.py").read_bytes() == (ROOT / "main.py").read_bytes()
    app = p("/opt/labwall/app")
    for package in ("monitor", "collectors"):
        shipped = {f.relative_to(ROOT) for f in (ROOT / package).rglob("*.py") if "__pycache__" not in str(f)}
        installed = {f.relative_to(app) for f in (app / package).rglob("*.py")}
        assert shipped and shipped <= installed
    assert not p("/opt/labwall/app/tests").exists(), "tests are not shipped"
    assert p("/etc/labwall/config.yaml").read_bytes() == (ROOT / "config.yaml").read_bytes()
    assert p("/etc/labwall/config.yaml.default").read_bytes() == (ROOT / "config.yaml").read_bytes()
    # The service user (made by systemd-sysusers from the installed sysusers.d file).
    assert p("/etc/sysusers.d/labwall.conf").is_file()
    passwd = {line.split(":")[0]: line.split(":") for line in p("/etc/passwd").read_text().splitlines()}
    assert passwd["labwall"][5] == "/var/lib/labwall" and passwd["labwall"][6].endswith("nologin")
    # Readable by the service user whatever the caller's umask.
    assert p("/opt/labwall/app/monitor").stat().st_mode & 0o005 == 0o005
    assert p("/etc/labwall/config.yaml").stat().st_mode & 0o777 == 0o644

    calls = installer.calls()
    assert f"python -m venv {p('/opt/labwall/venv')}" in calls
    assert any(c.startswith("pip install") and " -r " in c for c in calls), calls
    requirements = p("/opt/labwall/venv/labwall-requirements.txt").read_text()
    assert "nicegui" in requirements
    assert "labwall" not in requirements, "dependencies only; the code itself lives in app/"
    assert [c for c in calls if c.startswith("systemctl")] == [
        "systemctl daemon-reload", "systemctl enable labwall.service", "systemctl restart labwall.service",
    ]
    assert "wrote /etc/labwall/config.yaml" in out.stdout


def test_a_second_run_changes_nothing_and_only_makes_sure_it_runs(installer: Installer) -> None:
    installer.run("install")
    before = tree_state(installer.root)
    out = installer.run("install")
    assert tree_state(installer.root) == before
    calls = installer.calls()
    assert not [c for c in calls if c.startswith(("pip", "python -m venv"))], calls
    assert "systemctl restart labwall.service" not in calls
    assert "systemctl start labwall.service" in calls
    assert "nothing changed" in out.stdout


def test_an_edited_config_survives_upgrade_and_uninstall(installer: Installer) -> None:
    installer.run("install")
    config = installer.path("/etc/labwall/config.yaml")
    config.write_text("server:\n  port: 9090\n")
    # An upgrade: a file the old version shipped is gone, the config stays as edited.
    stale = installer.path("/opt/labwall/app/monitor/removed_module.py")
    stale.write_text("# shipped by an older version\n")
    installer.run("install")
    assert config.read_text() == "server:\n  port: 9090\n"
    assert not stale.exists()
    assert "systemctl restart labwall.service" in installer.calls()

    installer.run("uninstall")
    assert config.read_text() == "server:\n  port: 9090\n"
    assert not installer.path("/opt/labwall").exists()
    assert not installer.path("/etc/systemd/system/labwall.service").exists()
    assert not installer.path("/etc/sysusers.d/labwall.conf").exists()
    calls = installer.calls()
    assert calls[0] == "systemctl disable --now labwall.service" and "systemctl daemon-reload" in calls

    installer.run("uninstall")  # idempotent too
    assert config.exists()


def test_destdir_without_systemctl_override_refuses_to_touch_the_host(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SYSTEMCTL"}
    env["DESTDIR"] = str(tmp_path)
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "SYSTEMCTL" in result.stderr
    assert not any(tmp_path.iterdir())
