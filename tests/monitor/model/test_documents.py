"""The state documents' names (monitor/model/documents.py): each field class names exactly its TypedDicts' keys."""

from typing import get_type_hints

import pytest

from monitor.model import documents as d
from monitor.model.store import Store


def keys(*typed: type) -> set[str]:
    return {k for t in typed for k in get_type_hints(t)}


@pytest.mark.parametrize(("names", "typed"), [
    (d.GpuField, (d.GpuReading,)),
    (d.GpuDocumentField, (d.GpuDocument,)),
    (d.ProcessField, (d.GpuProcess,)),
    (d.XidField, (d.XidError,)),
    (d.HostField, (d.HostReading,)),
    (d.DiskField, (d.DiskUsage,)),
    (d.JoinField, (d.GpuRunsDocument, d.ProcessJoin, d.RunPlacement)),
])
def test_each_field_class_names_the_keys_of_its_documents(names: type, typed: tuple[type, ...]) -> None:
    assert d.fields_of(names) == keys(*typed)
    for name, key in vars(names).items():
        if name.isupper():
            assert name.endswith(key.upper()), (name, key)  # GpuField.POWER_DRAW_WATTS == "power_draw_watts"


def test_readers_give_empty_documents_before_the_first_reading_and_skip_broken_entries() -> None:
    store = Store(host="h")
    assert d.gpu_document(store) == {} and d.host_reading(store) == {} and d.gpu_readings(store) == []
    store.set_state(d.Source.GPU, {"gpus": [{"index": 0}, "broken"]}, 1.0)
    store.set_state(d.Source.HOST, ["not", "a", "mapping"], 1.0)
    assert d.gpu_readings(store) == [{"index": 0}]
    assert d.host_reading(store) == {}
