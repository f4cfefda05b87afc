"""Every declared collector: found without a list, named by its config key, with a section whose
defaults validate, a factory that builds it, and a config schema that matches config.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import ROOT

from collectors.base import Collector
from collectors.registry import CollectorSpec, declared_specs, find_specs
from monitor.config import APP_SECTIONS, Config, parse_config
from monitor.model.settings import CollectorContext, Section
from monitor.model.store import Store

SHIPPED = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def test_every_collector_package_declares_its_spec() -> None:
    assert [s.name for s in declared_specs()] == ["host", "gpu", "runs", "join", "prometheus"]


def test_names_are_unique_and_are_config_keys() -> None:
    names = [s.name for s in declared_specs()]
    assert len(names) == len(set(names))
    config = Config()
    for spec in declared_specs():
        assert isinstance(getattr(config, spec.name), spec.section)
        assert not set(names) & set(APP_SECTIONS)


@pytest.mark.parametrize("spec", declared_specs(), ids=lambda s: s.name)
def test_section_defaults_validate_and_reject_unknown_keys(spec: CollectorSpec) -> None:
    assert issubclass(spec.section, Section)
    assert spec.section.model_validate({}) == spec.section()
    assert spec.section.model_validate(spec.section().model_dump()) == spec.section()
    with pytest.raises(Exception, match="extra"):
        spec.section.model_validate({"no_such_key": 1})


@pytest.mark.parametrize("spec", declared_specs(), ids=lambda s: s.name)
def test_factory_builds_the_collector_of_that_name(spec: CollectorSpec, tmp_path: Path) -> None:
    on: dict[str, dict[str, Any]] = {
        "gpu": {"backend": "simulated"}, "runs": {"roots": [str(tmp_path)]},
        "prometheus": {"url": "http://127.0.0.1:9"},
    }  # fmt: skip
    section = spec.section.model_validate(on.get(spec.name, {}))
    collector = spec.build(section, CollectorContext(Store("h"), run_roots=(tmp_path,)))
    assert isinstance(collector, Collector) and collector.name == spec.name
    collector.close()
    if "enabled" in type(section).model_fields:
        assert spec.build(section.model_copy(update={"enabled": False}), CollectorContext(Store("h"))) is None


def test_config_has_the_keys_of_config_yaml() -> None:
    # host_label is commented out in config.yaml: its default is the machine's name.
    assert set(Config.model_fields) == set(SHIPPED) | {"host_label"}
    config = Config()
    for key, value in SHIPPED.items():
        if isinstance(value, dict):
            assert set(value) == set(type(getattr(config, key)).model_fields), key
    assert parse_config(SHIPPED).model_dump() == parse_config({}).model_dump() | {"host_label": Config().host_label}


def test_two_collectors_with_one_name_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "twin_collectors"
    package.mkdir()
    (package / "__init__.py").write_text("")
    declaration = (
        "from collectors.registry import CollectorSpec\nfrom monitor.model.settings import Section\n"
        "SPEC = CollectorSpec('twin', Section, lambda section, context: None, order=1)\n"
    )
    (package / "one.py").write_text(declaration)
    (package / "two.py").write_text(declaration)
    (package / "helper.py").write_text("VALUE = 1\n")  # no SPEC: not a collector
    monkeypatch.syspath_prepend(str(tmp_path))
    import twin_collectors

    with pytest.raises(RuntimeError, match="two collectors declare the same name: twin"):
        find_specs(twin_collectors)
    (package / "two.py").unlink()
    assert [s.name for s in find_specs(twin_collectors)] == ["twin"]


def test_collectors_never_import_the_app_config() -> None:
    script = (
        "import sys\nfrom collectors.registry import declared_specs\n"
        "from collectors.gpu.backend import gpu_backends\n"
        "declared_specs(); gpu_backends()\n"
        "print(sorted(m for m in sys.modules if m.startswith('monitor.') and not m.startswith('monitor.model')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
