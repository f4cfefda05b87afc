"""Plain text logs (captured stdout/stderr): metrics, tqdm progress, end and crash markers.

Recognised, line by line (a bare \\r, tqdm's redraw, also ends a line; ANSI escapes are removed):
- Python dict lines, e.g. HF Trainer's `{'loss': '3.811', 'learning_rate': '0.00015', 'epoch': '0.28'}`
  (numbers or numeric strings are metrics; `train_runtime` marks the run finished);
- `key=value` / `key: value` pairs (two or more on a line, or one whose key names a metric such
  as loss, acc, lr, step, epoch), and `step 5/100` (step and total); repr lines such as
  `Namespace(lr=0.1, ...)` are arguments, not metrics;
- tqdm bars `45%|████▌     | 450/1000 [01:23<01:40, 5.47it/s, loss=0.5]`: the first unnamed (or
  "train…") bar's n/total is the step and the total; bars with another total (HF's eval bar) and
  named bars (loading, map, writing) are ignored; Lightning's `Epoch 3:` bars give epoch * total + n;
  `key=value` after the rate are metrics;
- a Python traceback (reason: its final exception line) or a CUDA / OOM / NCCL error, segfault or
  `Killed`: the run crashed.
A line's step is its own `step` key; else, once the log has written steps itself, its last one;
else the training bar's step (HF's dicts are written by tqdm.write *before* the bar is redrawn with
the new step, so they take the step of the next redraw); else (plain logs) its position among
metric lines. With `metrics=False` (a log beside structured metrics) only markers are read.
A directory is a `text` run when one of its logs (`*.log`, `*.out`, `*.err`, `*log*.txt`, ...) holds
metric pairs, dict lines, tqdm bars or a traceback in its first 64 KiB.
Bad lines (counted, skipped whole): a NaN/inf value, a non-number where the key held numbers, a
`{...}` line that is not a dict, non-UTF-8 bytes (the rest of such a line is still read).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.parsed import STEP_KEYS, TOTAL_KEYS, LineReader, Parsed, integral_step, not_finite_reason
from collectors.runs.sources import LineSource, SourceSettings

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
TQDM = re.compile(
    r"(?:(?P<desc>[^|\r\n]*?):\s*)?(?P<pct>\d{1,3})%\|[^|\r\n]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*\[(?P<info>[^\]\r\n]*)\]"
)
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf(?:inity)?"
PAIR = re.compile(rf"(?<![\w./-])(?P<key>[A-Za-z_][\w./-]{{0,63}})\s*[=:]\s*(?P<value>{NUMBER})(?![\w.:])", re.I)
WORD_PAIR = re.compile(r"(?<![\w./-])(?P<key>[A-Za-z_][\w./-]{0,63})\s*=\s*(?P<value>[^\s,;|]+)")
STEP_OF = re.compile(r"\b(?:step|iter(?:ation)?)\s*[:=]?\s*(?P<n>\d+)\s*/\s*(?P<total>\d+)", re.I)
REPR_LINE = re.compile(r"^[A-Za-z_][\w.]*\(.*\)$")
METRIC_KEY = re.compile(
    r"loss|acc|lr\b|learning_rate|step|epoch|ppl|perplexity|reward|score|f1|bleu|rouge|grad|norm|mse|mae|auc|"
    r"iou|wer|cer|top\d|precision|recall|throughput|tokens",
    re.I,
)
EVAL_BAR = re.compile(r"eval|valid|test|predict|sanity|download|map", re.I)
TRAIN_BAR = re.compile(r"train", re.I)
EPOCH_BAR = re.compile(r"^\s*Epoch\s+(\d+)", re.I)
TRACEBACK = "Traceback (most recent call last):"
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Fault)\b(?::.*)?$")
CRASH_LINE = re.compile(
    r"CUDA out of memory|OutOfMemoryError|CUDA error|NCCL error|cuDNN error|CUBLAS_STATUS|Segmentation fault|"
    r"core dumped|^Killed$|ChildFailedError",
    re.I,
)
MAX_DICT_CHARS = 100_000
MAX_WAITING = 1000  # HF dicts held for the next redraw; beyond, the bar's last step is used
HF_END_KEY = "train_runtime"


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is int or kind is float:
        return float(value)
    if kind is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


class TextLogReader(LineReader):
    def __init__(self, metrics: bool = True, hf: bool = False) -> None:
        self.metrics = metrics
        self.hf = hf
        self.main_total: int | None = None
        self.bar_step: int | None = None
        self.explicit_step: int | None = None  # the last step the log wrote itself (step=, step N/M)
        self.ordinal = 0
        self.in_traceback: int | None = None  # line where the traceback being read started
        self.numeric_keys: set[str] = set()
        self.waiting: list[tuple[int, dict[str, float], float]] = []  # HF dicts waiting for the next redraw

    def reset(self) -> None:
        self.main_total = self.bar_step = self.explicit_step = self.in_traceback = None
        self.ordinal = 0
        self.waiting = []

    def read(self, lines: Sequence[tuple[int, bytes]], mtime: float, parsed: Parsed) -> None:
        for no, raw in lines:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                parsed.add_bad(no, f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1})")
                text = raw.decode("utf-8", errors="replace")
            if "\x1b" in text:
                text = ANSI.sub("", text)
            self._line(no, text, mtime, parsed)

    def unterminated(self, line: tuple[int, bytes], mtime: float, parsed: Parsed) -> None:
        """A last line that never got its newline (the writer stopped mid-line): bad unless a tqdm redraw."""
        no, raw = line
        text = raw.decode("utf-8", errors="replace")
        if TQDM.search(text) is None and text.strip():
            parsed.add_bad(no, "the line was never completed (no newline)")

    def _line(self, no: int, text: str, mtime: float, parsed: Parsed) -> None:
        stripped = text.strip()
        if not stripped:
            return
        if self._crash(no, text, stripped, parsed):
            return
        if "%|" in text:
            bars = list(TQDM.finditer(text))
            if bars:
                self._bar(no, bars[-1], mtime, parsed)
                rest = text[bars[-1].end():]
                if rest.strip():  # a message written right after a redraw, without a line break
                    self._line(no, rest, mtime, parsed)
                return
        if not self.metrics:
            return
        brace = stripped.find("{")
        if brace >= 0 and stripped.endswith("}") and stripped[brace + 1 : brace + 2] in ("'", '"', "}"):
            self._dict(no, stripped[brace:], mtime, parsed)
            return
        if ("=" in text or ":" in text) and not REPR_LINE.match(stripped):
            self._pairs(no, text, mtime, parsed)

    def _crash(self, no: int, text: str, stripped: str, parsed: Parsed) -> bool:
        if stripped.startswith(TRACEBACK):
            if self.in_traceback is None:
                self.in_traceback = no
                parsed.add_marker("crash", "Python traceback", no, self.bar_step)
            return True
        if self.in_traceback is not None:
            if text[:1] in (" ", "\t"):
                return True
            if EXCEPTION_LINE.match(stripped):
                parsed.add_marker("crash", stripped[:200], self.in_traceback, self.bar_step)
                self.in_traceback = None
                return True
            if stripped.startswith(("During handling", "The above exception")):
                return True
        if CRASH_LINE.search(stripped):
            parsed.add_marker("crash", stripped[:200], no, self.bar_step)
            return True
        return False

    def _bar(self, no: int, match: re.Match[str], mtime: float, parsed: Parsed) -> None:
        desc = (match["desc"] or "").strip()
        n, total = int(match["n"]), int(match["total"])
        epoch = EPOCH_BAR.match(desc)
        if epoch:
            step = int(epoch[1]) * total + n
        elif desc and (EVAL_BAR.search(desc) or not TRAIN_BAR.search(desc)):
            return  # named bars (loading, mapping, writing, evaluating) are not the training loop
        elif self.main_total is None or total == self.main_total:
            self.main_total = total
            parsed.total = total
            step = n
        else:
            return
        if not self.metrics:
            return
        if self.waiting:  # HF: the dicts written before this redraw belong to its step
            for line, values, when in self.waiting:
                self._emit(line, values, step, when, parsed)
            self.waiting = []
        self.bar_step = step
        if self.explicit_step is not None:
            return  # the log writes its own steps: the bar only shows progress within them
        parsed.progress.append((mtime, step))
        info = match["info"]
        rate_end = max(info.find("it/s"), info.find("s/it"))
        if rate_end >= 0:
            postfix = {m["key"]: m["value"] for m in PAIR.finditer(info[rate_end:])}
            postfix.pop("v_num", None)
            if postfix:
                self._record(no, postfix, mtime, parsed, step=step)

    def _dict(self, no: int, text: str, mtime: float, parsed: Parsed) -> None:
        record: Any = None
        if len(text) <= MAX_DICT_CHARS:
            try:
                record = json.loads(text)
            except ValueError:
                try:
                    record = ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    record = None
        if not isinstance(record, dict):
            parsed.add_bad(no, "a {...} line that is not a Python or JSON dict")
            return
        if HF_END_KEY in record:
            runtime = _number(record[HF_END_KEY])
            reason = f"train_runtime {runtime:g} s logged" if runtime is not None else "train_runtime logged"
            parsed.add_marker("end", reason, no, self.bar_step)
        self._record(no, record, mtime, parsed)

    def _pairs(self, no: int, text: str, mtime: float, parsed: Parsed) -> None:
        record: dict[str, Any] = {m["key"]: m["value"] for m in PAIR.finditer(text)}
        for m in WORD_PAIR.finditer(text):  # `loss=abc` where loss is logged as a number
            if m["key"] not in record and m["key"] in self.numeric_keys:
                record[m["key"]] = m["value"]
        of = STEP_OF.search(text)
        if of:
            record.setdefault("step", of["n"])
            parsed.total = int(of["total"])
        if len(record) >= 2 or (record and METRIC_KEY.search(next(iter(record)))):
            self._record(no, record, mtime, parsed)

    def _record(self, no: int, record: dict[Any, Any], mtime: float, parsed: Parsed, step: int | None = None) -> None:
        values: dict[str, float] = {}
        for key, value in record.items():
            name = str(key)
            number = _number(value)
            if number is None:
                if name in self.numeric_keys and not isinstance(value, bool | type(None)):
                    parsed.add_bad(no, f"{name!r} is not a number: {str(value)[:40]!r}")
                    return
                if isinstance(value, str):
                    parsed.texts[name] = value
                continue
            if not math.isfinite(number):
                parsed.add_bad(no, not_finite_reason(name, number))
                return  # a bad line is skipped whole
            values[name] = number
        step_key = next((k for k in values if k.lower() in STEP_KEYS), None)
        if step is None and step_key is not None:
            step = integral_step(values.pop(step_key))
            if step is not None:
                self.explicit_step = step
        self.ordinal += 1
        if not values:
            return
        self.numeric_keys.update(values)
        for name in [k for k in values if k in TOTAL_KEYS]:
            parsed.total, parsed.total_is_end = int(values.pop(name)), True
        if step is None:
            if self.explicit_step is not None:
                step = self.explicit_step
            elif self.hf and self.main_total is not None and len(self.waiting) < MAX_WAITING:
                self.waiting.append((no, values, mtime))  # its step is the next redraw's
                return
            elif self.bar_step is not None:
                step = self.bar_step
            elif not self.hf:
                step = self.ordinal - 1
        if step is not None:
            self._emit(no, values, step, mtime, parsed)

    @staticmethod
    def _emit(no: int, values: dict[str, float], step: int, mtime: float, parsed: Parsed) -> None:
        if not values:
            return
        parsed.records += 1
        parsed.progress.append((mtime, step))
        for name, number in values.items():
            parsed.add_point(name, step, mtime, number)


TEXT_SUFFIXES = (".log", ".out", ".err")
TEXT_TXT = re.compile(r"log|out|train|stdout|stderr|console", re.I)


def is_text_log(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(TEXT_SUFFIXES) or (lower.endswith(".txt") and bool(TEXT_TXT.search(lower[:-4])))


def looks_like_log(head: str) -> bool:
    """A training log: a traceback, a tqdm bar, a dict line or a line of metric pairs in its head."""
    if TRACEBACK in head or TQDM.search(head) or "{'loss'" in head or '{"loss"' in head:
        return True
    return any(len(PAIR.findall(line)) >= 2 for line in head.splitlines()[:2000])


def text_logs(listing: Listing) -> list[str]:
    """The logs of a directory that no other format's sniff claimed (a log written as CSV is a CSV)."""
    return [p for p in listing.named(is_text_log) if listing.sniffed.get(p) in (None, FORMAT.name)]


def _recognise(listing: Listing) -> Match | None:
    logs = [p for p in text_logs(listing) if listing.sniffed.get(p) == FORMAT.name]
    return Match(files={"text": logs}) if logs else None


def text_log_source(metrics: bool, hf: bool = False) -> FileKind:
    """Text logs read with or without metrics (markers and progress only), HF's steps or not."""
    def open_log(path: str, settings: SourceSettings) -> LineSource:
        return LineSource(path, TextLogReader(metrics=metrics, hf=hf), settings, split_cr=True)

    return FileKind("text", "streamed", open_log)


FORMAT = RunFormat(
    name="text",
    precedence=60,
    recognise=_recognise,
    is_candidate=is_text_log,
    files=text_log_source(metrics=False),  # a log beside structured metrics: markers only
    companions=text_logs,
    reads=(text_log_source(metrics=True),),  # the run's own record: its metrics too
    sniff_names=is_text_log,
    sniff=looks_like_log,
)
