"""JSONL batches are parsed with orjson first; every line keeps the outcome `json` gives it.

Each malformed JSONL case (tests/data/malformed) and a set of lines where orjson and `json` read
differently (integers beyond 64 bits, deep nesting, NaN literals, a BOM, lone surrogates) is read
twice by the real tail + JsonlReader: as it ships (orjson first) and with the orjson batch turned off
(`json` only, the reader before orjson). Points, bad lines and their reasons, texts, markers and the
reader's state must be identical, whether the file is read in one batch or line by line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collectors.runs.formats import jsonl, jsonl_batch
from collectors.runs.parsed import Parsed
from collectors.runs.tailer import FileTail

DATA = Path(__file__).resolve().parents[2] / "data" / "malformed"
CASES = [c["file"] for c in json.loads((DATA / "cases.json").read_text())["cases"]
         if c["format"] == "jsonl" and not c.get("generated")]


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


GOOD = '{"step": %d, "time": 1764000000.5, "loss": 0.25, "lr": 0.001}'
EDGE_LINES = {
    "big_int_step": [GOOD % 1, '{"step": 1180591620717411303424, "loss": 1}', GOOD % 3],
    "big_negative_step": [GOOD % 1, '{"step": -18446744073709551617, "loss": 1}', GOOD % 3],
    "u64_step": [GOOD % 1, '{"step": 18446744073709551615, "loss": 1}', GOOD % 3],
    "float_step_1e19": [GOOD % 1, '{"step": 1e19, "loss": 1}', GOOD % 3],
    "big_int_metric": [GOOD % 1, '{"step": 2, "loss": 123456789012345678901234567890}', GOOD % 3],
    "big_int_time": [GOOD % 1, '{"step": 2, "time": 17640000000000000000000, "loss": 1}', GOOD % 3],
    "huge_int_metric": [GOOD % 1, '{"step": 2, "loss": 1' + "0" * 400 + "}", GOOD % 3],
    "deep_objects_995": [GOOD % 1, '{"step": 2, "x": ' + _deep(995) + "}", GOOD % 3],
    "deep_objects_1100": [GOOD % 1, '{"step": 2, "x": ' + _deep(1100) + "}", GOOD % 3],
    "deep_list_in_step": [GOOD % 1, '{"step": ' + "[" * 995 + "]" * 995 + "}", GOOD % 3],
    "deep_list_in_event": [GOOD % 1, '{"event": ' + "[" * 995 + "]" * 995 + "}", GOOD % 3],
    "deep_in_nested": [GOOD % 1, '{"step": 2, "train": {"x": ' + _deep(995) + "}}", GOOD % 3],
    "nested_metrics": [GOOD % 1, '{"step": 2, "train": {"loss": 1, "acc": 0.5}, "tags": [1, 2]}', GOOD % 3],
    "nan_literal": [GOOD % 1, '{"step": 2, "loss": NaN}', GOOD % 3],
    "lone_surrogate": [GOOD % 1, '{"step": 2, "note": "\\ud800"}', GOOD % 3],
    "bom_mid_file": [GOOD % 1, "\ufeff" + GOOD % 2, GOOD % 3],
    "numeric_string_then_text": ['{"step": 1, "loss": "0.5"}', '{"step": 2, "loss": 0.4}', '{"step": 3, "loss": "x"}'],
    "events": [GOOD % 1, '{"event": "end", "step": 2}', '{"total_steps": 10, "step": 3}'],
    "duplicate_keys": ['{"step": 1, "loss": 1, "loss": 2}', GOOD % 2],
}


def _outcome(path: Path, mode: str) -> dict[str, Any]:
    """Read the whole file: as one block (how the runs collector tails JSONL), one list of lines, or line by line."""
    tail = FileTail(str(path), blocks=mode == "block")
    reader = jsonl.JsonlReader()
    parsed = Parsed(file=path.name)
    chunk = tail.poll()
    if chunk is not None and chunk.block_lines:
        reader.read_block(chunk.first_line, chunk.block, 1_764_000_000.0, parsed)
    lines = list(chunk.lines) if chunk else []
    if tail.pending:
        taken = tail.take_unterminated()
        assert taken is not None
        lines.append(taken)
    for batch in ([[line] for line in lines] if mode == "per_line" else [lines]):
        reader.read(batch, 1_764_000_000.0, parsed)
    return {
        "points": {m: [a.tolist() for a in arrays] for m, arrays in parsed.points().items()},
        "bad": parsed.bad, "first_bad": parsed.first_bad, "texts": parsed.texts,
        "markers": [(m.kind, m.reason, m.line, m.step, m.after_records) for m in parsed.markers],
        "records": parsed.records, "total": parsed.total, "progress": parsed.progress,
        "reader": (reader.ordinal, reader.last_step, sorted(reader.numeric_keys)),
    }


def _both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(jsonl_batch, "orjson_batch", lambda lines: None)
        patch.setattr(jsonl_batch, "orjson_block", lambda block: None)
        exact = {mode: _outcome(path, mode) for mode in ("lines", "per_line")}
    for mode in ("block", "lines", "per_line"):
        assert _outcome(path, mode) == exact["per_line" if mode == "per_line" else "lines"], f"{path.name} ({mode})"


@pytest.mark.parametrize("name", CASES)
def test_malformed_case_reads_the_same_with_orjson(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _both_ways(DATA / name, monkeypatch)


@pytest.mark.parametrize("name", sorted(EDGE_LINES))
def test_lines_orjson_reads_differently_keep_their_outcome(name: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(line + "\n" for line in EDGE_LINES[name]), encoding="utf-8", errors="surrogatepass")
    _both_ways(path, monkeypatch)


def test_a_clean_block_is_read_by_orjson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_text("".join(GOOD % i + "\n" for i in range(100)))
    read_by_orjson: list[int] = []
    original = jsonl_batch.orjson_block

    def spy(block: bytes) -> Any:
        records = original(block)
        read_by_orjson.append(len(records or ()))
        return records

    monkeypatch.setattr(jsonl_batch, "orjson_block", spy)
    result = _outcome(path, "block")
    assert read_by_orjson == [100] and result["records"] == 100 and result["bad"] == 0
    assert result["points"]["loss"][0] == list(range(100))
