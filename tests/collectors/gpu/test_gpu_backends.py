"""The GPU backend contract: every declared backend implements it, the NVML errors it turns into,
and a backend plugged in by name that the collector drives without an edit."""

from __future__ import annotations

from collections.abc import Iterator

import pynvml
import pytest
from fake_nvml import FakeNvml

from collectors.base import CollectorThread
from collectors.gpu.backend import (
    BackendGone,
    BackendUnavailable,
    DeviceFault,
    GpuBackend,
    GpuBackendSpec,
    GpuDevice,
    NoDriver,
    gpu_backends,
    register_backend,
    unregister_backend,
)
from collectors.gpu.config import GpuConfig
from collectors.gpu.fields import NO_DRIVER, NO_GPU
from collectors.gpu.nvml import NvmlBackend
from monitor.app import build_collectors
from monitor.config import ConfigError, parse_config
from monitor.model.store import Store


def test_declared_backends() -> None:
    assert list(gpu_backends()) == ["nvml", "simulated"]


@pytest.mark.parametrize("name", ["nvml", "simulated"])
def test_every_declared_backend_implements_the_protocol(name: str) -> None:
    backend = gpu_backends()[name].open(GpuConfig(backend=name, simulated_count=2))
    assert isinstance(backend, GpuBackend) and backend.name == name
    assert backend.simulated is (name == "simulated")


def test_devices_of_both_nvml_backends_implement_the_device_protocol() -> None:
    simulated = gpu_backends()["simulated"].open(GpuConfig(backend="simulated", simulated_count=2))
    for backend in (simulated, NvmlBackend(FakeNvml(2))):
        backend.init()
        assert backend.device_count() == 2
        device = backend.open(1)
        assert isinstance(device, GpuDevice)
        assert device.read_static()["uuid"]
        backend.shutdown()


def test_nvml_errors_become_backend_errors() -> None:
    fake = FakeNvml(2)
    backend = NvmlBackend(fake)
    fake.init_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    with pytest.raises(NoDriver, match=NO_DRIVER):
        backend.init()
    fake.init_error = pynvml.NVML_ERROR_NO_PERMISSION
    with pytest.raises(BackendUnavailable, match="no permission") as info:
        backend.init()
    assert not isinstance(info.value, NoDriver)
    fake.init_error = None
    backend.init()
    device = backend.open(0)
    fake.lose(0)
    with pytest.raises(DeviceFault, match="GPU is lost"):
        device.read_dynamic()
    fake.library_error = pynvml.NVML_ERROR_UNINITIALIZED
    with pytest.raises(BackendGone, match="NVML stopped answering"):
        device.read_dynamic()
    backend.shutdown()
    empty = NvmlBackend(FakeNvml(0))
    empty.init()
    with pytest.raises(BackendUnavailable, match=NO_GPU):
        empty.device_count()


@pytest.fixture
def plugged() -> Iterator[FakeNvml]:
    fake = FakeNvml(3)
    register_backend(GpuBackendSpec("fake", lambda section: NvmlBackend(fake, name="fake")))
    yield fake
    unregister_backend("fake")


def test_a_plugged_backend_is_chosen_by_config(plugged: FakeNvml) -> None:
    config = parse_config({"gpu": {"backend": "fake"}, "host": {"enabled": False}})
    store = Store("h")
    gpu = next(c for c in build_collectors(config, store) if c.name == "gpu")
    assert CollectorThread(gpu).step() is None
    document = store.state("gpu")[1]
    assert (document["backend"], document["simulated"], len(document["gpus"])) == ("fake", False, 3)
    assert plugged.calls["nvmlInit"] == 1
    with pytest.raises(ConfigError) as info:
        parse_config({"gpu": {"backend": "cuda"}})
    assert info.value.problems == ["gpu.backend: 'cuda' — input should be 'nvml', 'simulated' or 'fake'"]


def test_unknown_backend_names_the_declared_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"gpu": {"backend": 5}})
    assert info.value.problems == ["gpu.backend: 5 — input should be 'nvml' or 'simulated'"]
