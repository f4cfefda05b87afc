"""The layer contract of pyproject.toml ([tool.importlinter]) holds: model <- collectors <- app/views,
views never import collectors, no cycles. `make test` runs `lint-imports` too; this keeps a plain
`pytest` honest, and shows the broken contract in the failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout, result.stdout[-4000:]


def test_model_imports_nothing_else_of_labwall() -> None:
    """A stricter reading of the model rule than layers alone: not even lazily inside a function."""
    offenders = []
    for path in (ROOT / "monitor" / "model").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            words = line.strip().split()
            if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith(("collectors", "monitor.")) \
                    and not words[1].startswith("monitor.model"):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
