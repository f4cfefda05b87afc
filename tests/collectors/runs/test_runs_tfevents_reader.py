"""The event file reader frames, checks and parses records itself; it reads exactly what TensorBoard's
own `EventFileLoader` yields.

Event files holding every kind of summary value TensorBoard migrates (old `simple_value`s, scalar
tensors whose plugin is named on the first value only, histograms, images, text, a tag first seen as
a histogram then logged as a scalar, NaN and infinite values, several values per event, a graph),
a record cut off at the end and completed later, and a record whose CRC fails are read twice: by
`EventFileReader` and by TensorBoard's `EventFileLoader` feeding the reader's own per-value rules.
The points, bad records, progress and event counts must be the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto import event_pb2, graph_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from collectors.runs.formats.tfevents import EventFileReader
from collectors.runs.formats.tfrecord import masked_crc32c
from collectors.runs.parsed import Parsed

Value = summary_pb2.Summary.Value


def _plugin(name: str) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=name))


def _event(step: int, *values: Value, **fields: Any) -> bytes:
    summary = summary_pb2.Summary(value=list(values)) if values else None
    return event_pb2.Event(step=step, wall_time=1_764_000_000.0 + step, summary=summary, **fields).SerializeToString()


def _events() -> list[bytes]:
    histo = summary_pb2.HistogramProto(min=0, max=1, num=2, sum=1, bucket_limit=[1], bucket=[2])
    image = summary_pb2.Summary.Image(height=1, width=1, colorspace=1, encoded_image_string=b"png")
    records = [event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString()]
    records.append(_event(0, Value(tag="loss", simple_value=2.0), Value(tag="acc", simple_value=0.1)))
    for step in range(1, 40):
        records.append(_event(step, Value(tag="loss", simple_value=2.0 / step)))
    records.append(_event(40, Value(tag="loss", simple_value=float("nan")), Value(tag="acc", simple_value=0.5)))
    records.append(_event(41, Value(tag="loss", simple_value=float("inf"))))
    records.append(_event(42, Value(tag="tf2", metadata=_plugin("scalars"),
                                    tensor=tensor_util.make_tensor_proto(np.float32(1.5)))))
    records.append(_event(43, Value(tag="tf2", tensor=tensor_util.make_tensor_proto(np.float64(0.25)))))
    records.append(_event(44, Value(tag="tf2", tensor=tensor_util.make_tensor_proto(np.array([1.0, 2.0])))))
    records.append(_event(45, Value(tag="h", histo=histo)))
    records.append(_event(46, Value(tag="h", simple_value=3.0)))  # first a histogram, then a scalar
    records.append(_event(47, Value(tag="img", image=image), Value(tag="loss", simple_value=0.01)))
    records.append(_event(48, Value(tag="note", metadata=_plugin("text"),
                                    tensor=tensor_util.make_tensor_proto(np.array([b"hi"], dtype=object)))))
    records.append(_event(49, Value(tag="other", metadata=_plugin("custom"), simple_value=7.0)))
    records.append(_event(50, Value(tag="other", simple_value=8.0)))
    records.append(_event(51, Value(tag="new", simple_value=1.0), Value(tag="loss", simple_value=0.5)))
    records.append(event_pb2.Event(step=52, wall_time=2.0, graph_def=graph_pb2.GraphDef().SerializeToString())
                   .SerializeToString())
    records.append(_event(53, Value(tag="loss", simple_value=0.25)))
    return records


def _framed(records: list[bytes], path: Path) -> bytes:
    with path.open("wb") as f:
        writer = RecordWriter(f)
        for record in records:
            writer.write(record)
        writer.flush()
    return path.read_bytes()


def _reference(path: Path) -> tuple[dict[str, Any], int]:
    """What TensorBoard's loader yields, through the reader's own per-value rules."""
    reader = EventFileReader(str(path))
    parsed = Parsed()
    count = 0
    for event in EventFileLoader(str(path)).Load():
        count += 1
        if event.HasField("summary"):
            reader._summary(event, parsed, count)
    return _result(parsed), count


def _ours(path: Path, reader: EventFileReader | None = None) -> tuple[dict[str, Any], int, EventFileReader]:
    reader = reader or EventFileReader(str(path))
    parsed = Parsed()
    reader.poll(parsed)
    return _result(parsed), reader.events, reader


def _result(parsed: Parsed) -> dict[str, Any]:
    return {"points": {m: [a.tolist() for a in arrays] for m, arrays in parsed.points().items()},
            "bad": parsed.bad, "first_bad": parsed.first_bad, "records": parsed.records, "progress": parsed.progress}


def test_every_kind_of_value_reads_as_tensorboards_loader_yields_it(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.1.host"
    _framed(_events(), path)
    ours, events, _ = _ours(path)
    reference, count = _reference(path)
    assert ours == reference and events == count
    assert ours["points"]["loss"][0][:3] == [0, 1, 2] and ours["bad"] == 2  # NaN and inf: counted, skipped


def test_a_record_cut_off_waits_and_a_bad_crc_stops_reading_there(tmp_path: Path) -> None:
    records = _events()
    data = _framed(records, tmp_path / "whole")
    path = tmp_path / "events.out.tfevents.2.host"
    cut = len(data) - 5
    path.write_bytes(data[:cut])
    first, events, reader = _ours(path)
    assert (first, events) == _reference(path) and first["points"]["loss"][0][-1] != 53  # the last record waits
    with path.open("ab") as f:
        f.write(data[cut:])
    rest, events, _ = _ours(path, reader)
    assert events == _reference(path)[1] and rest["points"]["loss"][0] == [53]

    corrupt = bytearray(data)
    middle = len(_framed(records[:20], tmp_path / "head"))
    corrupt[middle + 14] ^= 0xFF  # a byte of the 21st record's data: its CRC no longer matches
    bad = tmp_path / "events.out.tfevents.3.host"
    bad.write_bytes(bytes(corrupt))
    ours, events, reader = _ours(bad)
    assert (ours, events) == _reference(bad) and events == 20
    assert reader._records is not None and reader._records.problem is not None
    assert "data CRC" in reader._records.problem


def test_masked_crc_is_tensorboards() -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

    for data in (b"", b"a", os.urandom(100), b"x" * 4096):
        assert masked_crc32c(data) == reference(data)
