"""The run-format extension point: what a format module declares, and how the formats are found.

A module in collectors/runs/formats/ that exports `FORMAT` (a `RunFormat`) or `FORMATS` (several) is
a run format; `load_formats()` finds every one (pkgutil over the package) and orders them by
precedence. Discovery, the sources and the collector only ever go through these specs: none of them
tests a format's name. The recipe: docs/ARCHITECTURE.md, "Recipe: a new run format".

How a directory becomes a run (collectors/runs/discovery.py): discovery lists it (`Listing`), and
- a directory some format says is `part_of_run` (HF's checkpoint-N) is never a run itself;
- the first format, by precedence, whose `recognise` returns a `Match` names the run;
- every file any format's `companions` claims in the directory belongs to the run, read the way its
  format's `files` kind says, unless the naming format reads that kind otherwise (`reads`) or lists
  that kind's files itself (`Match.files`).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from collectors.runs.sources import MergeMode, Source, SourceSettings

FORMATS_PACKAGE = "collectors.runs.formats"


@dataclass(frozen=True)
class FileKind:
    """How one kind of run file is read."""

    name: str  # unique across formats; a group source is keyed by the run dir + "#" + name
    mode: MergeMode  # streamed (in order, a step going back is a resume) or snapshot (whole file, merged by step)
    open: Callable[[str, SourceSettings], Source]  # (a file's path, or a group's run dir) -> its source
    grouped: bool = False  # one `GroupSource` for all the run's files of this kind (set_paths), else one per file


@dataclass(frozen=True)
class Listing:
    """One directory as discovery saw it."""

    path: str
    root: str
    files: Mapping[str, str]  # name -> path (regular files, symlinks followed)
    dirs: Mapping[str, str]  # name -> path (hidden and tool directories left out)
    sniffed: Mapping[str, str | None]  # path -> name of the format whose `sniff` matched its head (or None)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def is_root(self) -> bool:
        return self.path == self.root

    def named(self, test: Callable[[str], bool]) -> list[str]:
        """Paths of the files whose name passes `test`, in name order."""
        return [self.files[name] for name in sorted(self.files) if test(name)]


@dataclass(frozen=True)
class Match:
    """A format recognised a run in a directory."""

    files: Mapping[str, list[str]] = field(default_factory=dict)  # kind name -> paths, instead of the companions
    claimed_dirs: frozenset[str] = frozenset()  # subdirectories that are part of the run: not walked for runs
    hyperparameters: tuple[str, ...] = ()  # files holding the run's hyperparameters (read by the format's read_params)
    name: str | None = None  # the run's own name where its files give one (MLflow's mlflow.runName tag)


def no_files(listing: Listing) -> list[str]:
    return []


def never(listing: Listing) -> bool:
    return False


@dataclass(frozen=True)
class RunFormat:
    """A run format, as its module declares it (`FORMAT = RunFormat(...)`)."""

    name: str  # shown in the API ("format") and in "run started: <name> (<format>)"
    precedence: int  # lower is tried first; the first format that recognises a directory names its run
    recognise: Callable[[Listing], Match | None]
    is_candidate: Callable[[str], bool]  # can a new file of this name make a run or change its layout?
    files: FileKind | None = None  # the kind of file this format reads, in any run of its directory
    companions: Callable[[Listing], list[str]] = no_files  # its files in a directory (whichever format names it)
    reads: tuple[FileKind, ...] = ()  # in a run this format names, read these kinds (by name) this way instead
    sniff_names: Callable[[str], bool] | None = None  # file names whose head is sniffed (by every format's sniff)
    sniff: Callable[[str], bool] | None = None  # a sniffed file's first 64 KiB (as text) is one of this format's
    part_of_run: Callable[[Listing], bool] = never  # a directory that belongs to a run above it (never a run)
    file_depth: int = 0  # how many directory levels below the run directory its files may lie
    records_end: bool = True  # its files say when a run ended; without that, a writer that exits is an end, not a crash
    candidate_dirs: frozenset[str] = frozenset()  # any new file in a directory of these names can change a run
    alias_links: frozenset[str] = frozenset()  # dir symlinks aliasing a run (W&B's latest-run): skipped
    read_params: Callable[[str, bytes], dict[str, object]] | None = None  # (path, data) of a hyperparameters file
    extra_kinds: tuple[FileKind, ...] = ()  # own kinds listed only by its Match.files (MLflow's meta.yaml)

    def reading(self, kind: FileKind) -> FileKind:
        """How a run this format names reads files of `kind`."""
        return next((k for k in self.reads if k.name == kind.name), kind)


def load_formats(package: str = FORMATS_PACKAGE) -> tuple[RunFormat, ...]:
    """Every format declared by a module of `package` (its `FORMAT` or `FORMATS`), in precedence order."""
    found: list[RunFormat] = []
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        declared = getattr(module, "FORMATS", None)
        if declared is None:
            declared = (module.FORMAT,) if hasattr(module, "FORMAT") else ()  # a helper module declares none
        found.extend(declared)
    for what, names in (("run formats", [f.name for f in found]),
                        ("file kinds", [k.name for f in found for k in own_kinds(f)])):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{what} declared twice: {', '.join(duplicates)}")
    return tuple(sorted(found, key=lambda f: (f.precedence, f.name)))


def own_kinds(spec: RunFormat) -> list[FileKind]:
    """The kinds of file a format declares: its `files` and its `extra_kinds`."""
    return ([spec.files] if spec.files is not None else []) + list(spec.extra_kinds)


def read_order(formats: tuple[RunFormat, ...]) -> list[FileKind]:
    """Every format's file kind in the order a run's files are first read: streamed before snapshots
    (a snapshot's value wins where both give a step), single files before groups, then by precedence."""
    kinds = [(kind, f.precedence) for f in formats for kind in own_kinds(f)]
    kinds.sort(key=lambda kp: (kp[0].mode == "snapshot", kp[0].grouped, kp[1]))
    return [kind for kind, _ in kinds]
