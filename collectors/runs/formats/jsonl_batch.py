"""Parsing a batch of JSONL lines into records: one `orjson.loads` for a clean batch, else one
`json.loads`, else line by line to find the bad lines (see collectors/runs/formats/jsonl.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from collectors.runs.parsed import Parsed

UTF8_BOM = b"\xef\xbb\xbf"


def _decode_error(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1})"


def orjson_batch(lines: Sequence[tuple[int, bytes]]) -> list[dict[str, Any]] | None:
    """The records of a batch of clean lines in one orjson call; None when any line is not a plain object."""
    raws = [raw for _, raw in lines]
    if not all(raws):
        return None
    if raws[0].startswith(UTF8_BOM):
        raws[0] = raws[0][len(UTF8_BOM):]
    try:
        records = orjson.loads(b"[" + b",".join(raws) + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(records) == len(raws) and set(map(type, records)) == {dict}:
        return records  # type: ignore[no-any-return]
    return None


def orjson_block(block: bytes) -> list[dict[str, Any]] | None:
    """`orjson_batch` of the lines of a block (joined by \\n), without a Python object per line."""
    if not block or block.startswith(b"\n") or block.endswith(b"\n") or b"\n\n" in block:
        return None  # an empty line
    try:
        records = orjson.loads(b"[" + block.removeprefix(UTF8_BOM).replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(records) == block.count(b"\n") + 1 and set(map(type, records)) == {dict}:
        return records  # type: ignore[no-any-return]
    return None


def load_records(lines: Sequence[tuple[int, bytes]], parsed: Parsed,
                 fast: bool = True) -> tuple[list[dict[str, Any]], list[int], bool]:
    """JSON objects of the non-empty lines, their line numbers, and False when orjson read them
    (`_Batch` then checks what orjson reads differently); bad lines go to `parsed`."""
    if not lines:
        return [], [], True
    if fast and (records := orjson_batch(lines)) is not None:
        return records, [no for no, _ in lines], False
    try:
        # A batch orjson refused (a NaN literal, say): one decode, one json.loads for all of them.
        texts = b"\n".join(raw for _, raw in lines).decode("utf-8").removeprefix("\ufeff").split("\n")
        if all(texts):
            records = json.loads("[" + ",".join(texts) + "]")
            if len(records) == len(texts) and all(type(r) is dict for r in records):
                return records, [no for no, _ in lines], True
    except Exception:  # any problem: find the bad lines one by one
        pass
    numbered = [(no, raw) for no, raw in lines if raw.strip()]
    records, numbers = [], []
    for no, raw in numbered:
        try:
            text = raw.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            parsed.add_bad(no, _decode_error(exc))
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            parsed.add_bad(no, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            parsed.add_bad(no, "invalid JSON: nested too deeply")
            continue
        except ValueError as exc:
            parsed.add_bad(no, f"invalid JSON: {str(exc)[:80]}")
            continue
        if type(record) is not dict:
            parsed.add_bad(no, f"not a JSON object (a JSON {type(record).__name__})")
            continue
        records.append(record)
        numbers.append(no)
    return records, numbers, True
