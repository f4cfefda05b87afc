"""Every declared run format is complete and found by discovery; a format dropped into the package is
picked up and read end to end; the core of the runs collector never names a format."""

from __future__ import annotations

import ast
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from runs_support import Watch, Writer

import collectors.runs.formats as formats_package
from collectors.runs import collector, discovery, format_spec, health, run_state, sources
from collectors.runs.format_spec import FileKind, Listing, RunFormat, load_formats
from collectors.runs.sources import GroupSource, Source, SourceSettings

API_FORMATS = ["hf_trainer", "wandb", "ray_tune", "mlflow", "lightning_csv", "dvclive", "jsonl", "sb3", "csv",
               "tensorboard", "text"]  # the API's "format" values
CORE_MODULES = [collector, discovery, sources, run_state, health, format_spec]

StartWatch = Callable[..., Watch]


def declared_kinds(formats: tuple[RunFormat, ...]) -> list[FileKind]:
    return [k for f in formats for k in ([f.files] if f.files else []) + list(f.reads)]


def test_every_declared_format_is_found_in_precedence_order() -> None:
    formats = load_formats()
    assert [f.name for f in formats] == API_FORMATS
    precedences = [f.precedence for f in formats]
    assert precedences == sorted(precedences) and len(set(precedences)) == len(precedences)


def test_every_spec_is_complete(tmp_path: Path) -> None:
    formats = load_formats()
    own_kinds = {f.files.name for f in formats if f.files is not None}
    assert len(own_kinds) == len([f for f in formats if f.files is not None])  # one owner per file kind
    empty = Listing(str(tmp_path), str(tmp_path), {}, {}, {})
    for spec in formats:
        assert spec.name and spec.name.isidentifier(), spec
        assert spec.recognise(empty) is None, f"{spec.name} recognises an empty directory"
        assert spec.companions(empty) == []
        assert not spec.part_of_run(empty)
        assert spec.file_depth >= 0
        assert (spec.sniff is None) or callable(spec.sniff)
        for kind in spec.reads:  # a format only reads differently a kind some format declares
            assert kind.name in own_kinds, f"{spec.name} reads unknown file kind {kind.name!r}"
    settings = SourceSettings(max_line_bytes=1 << 20, unterminated_s=60.0)
    for kind in declared_kinds(formats):
        assert kind.mode in ("streamed", "snapshot"), kind
        source = kind.open(str(tmp_path / "run" / "file"), settings)
        assert isinstance(source, Source)
        assert source.mode == kind.mode, f"{kind.name}: declared {kind.mode}, its source merges {source.mode}"
        assert isinstance(source, GroupSource) == kind.grouped, kind.name


def test_format_names_are_unique_at_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "second_jsonl.py").write_text(
        "from collectors.runs.formats.jsonl import FORMAT as JSONL\n"
        "from dataclasses import replace\n"
        "FORMAT = replace(JSONL, files=None)\n"
    )
    with extra_format_dir(monkeypatch, tmp_path, "second_jsonl"), pytest.raises(
        ValueError, match="run formats declared twice: jsonl"
    ):
        load_formats()


def test_the_core_never_names_a_format() -> None:
    """discovery, sources and the collector go through the specs only: no format name in their code."""
    names = set(API_FORMATS) | {k.name for k in declared_kinds(load_formats())}
    for module in CORE_MODULES:
        tree = ast.parse(Path(str(module.__file__)).read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        literals = {node.value for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}
        assert not literals & names, f"{module.__name__} names formats {sorted(literals & names)}"


MADE_UP_FORMAT = '''
"""A made-up format, MLflow-like: a run dir has a `made_up.meta` marker and `scalars/<metric>` files
of "step value" lines (files in a subdirectory), and `params.txt` hyperparameters."""

import os

from collectors.runs.format_spec import FileKind, Listing, Match, RunFormat
from collectors.runs.parsed import LineReader, Parsed
from collectors.runs.sources import LineSource, SourceSettings


class ScalarLines(LineReader):
    def __init__(self, metric: str) -> None:
        self.metric = metric

    def read(self, lines, mtime: float, parsed: Parsed) -> None:
        for no, raw in lines:
            fields = raw.split()
            if len(fields) != 2:
                parsed.add_bad(no, f"{len(fields)} fields, not 2")
                continue
            step = int(fields[0])
            parsed.add_point(self.metric, step, mtime, float(fields[1]))
            parsed.records += 1
            parsed.progress.append((mtime, step))


def open_scalars(path: str, settings: SourceSettings) -> LineSource:
    return LineSource(path, ScalarLines(os.path.basename(path)), settings)


def scalar_files(listing: Listing) -> list[str]:
    folder = listing.dirs.get("scalars")
    if "made_up.meta" not in listing.files or folder is None:
        return []
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def recognise(listing: Listing) -> Match | None:
    if not scalar_files(listing):
        return None
    params = tuple(listing.named(lambda name: name == "params.txt"))
    return Match(claimed_dirs=frozenset({"scalars"}), hyperparameters=params)


FORMAT = RunFormat(
    name="made_up",
    precedence=15,
    recognise=recognise,
    is_candidate=lambda name: name == "made_up.meta",
    files=FileKind("made_up_scalars", "streamed", open_scalars),
    companions=scalar_files,
    file_depth=1,
)
'''


class extra_format_dir:
    """Adds `folder` to the formats package's path (a module dropped into the package), undone on exit."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path, module: str) -> None:
        self.monkeypatch, self.folder, self.module = monkeypatch, folder, module

    def __enter__(self) -> None:
        self.monkeypatch.setattr(formats_package, "__path__", [*formats_package.__path__, str(self.folder)])

    def __exit__(self, *exc: object) -> None:
        self.monkeypatch.undo()
        sys.modules.pop(f"{formats_package.__name__}.{self.module}", None)


def test_a_format_dropped_into_the_package_is_discovered_and_read_end_to_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root: Path, writer: Writer
) -> None:
    package_dir = tmp_path / "dropped"
    package_dir.mkdir()
    (package_dir / "made_up.py").write_text(textwrap.dedent(MADE_UP_FORMAT))
    with extra_format_dir(monkeypatch, package_dir, "made_up"):
        assert [f.name for f in load_formats()] == [*API_FORMATS[:3], "made_up", *API_FORMATS[3:]]
        run = root / "exp" / "trial-1"
        writer.mkdir(run / "scalars")
        writer.append(run / "scalars" / "loss", "0 2.0\n1 1.5\n")
        writer.append(run / "scalars" / "acc", "0 0.1\n")
        writer.append(run / "params.txt", "lr 0.1\n")
        writer.append(run / "made_up.meta", "id: 1\n")
        writer.append(run / "metrics.jsonl", '{"step": 0, "reward": 3}\n')  # another format's file joins the run
        w = Watch(root).start()
        try:
            summary = w.wait_run("exp/trial-1", format="made_up")
            assert [(p[0], p[2]) for p in w.wait_points("exp/trial-1", "loss", 2)] == [(0, 2.0), (1, 1.5)]
            writer.append(run / "scalars" / "loss", "2 1.25\nbroken\n")  # a file in a subdirectory is followed
            assert [p[2] for p in w.wait_points("exp/trial-1", "loss", 3)] == [2.0, 1.5, 1.25]
            summary = w.wait_run("exp/trial-1", bad_lines=1)
            assert set(summary["metrics"]) >= {"loss", "acc", "reward"}
            assert [r["name"] for r in w.runs()] == ["exp/trial-1"]  # scalars/ is claimed: never a run of its own
            layout = next(iter(w.collector.runs.values())).layout
            assert layout.hyperparameters == (str(run / "params.txt"),)
        finally:
            w.stop()
