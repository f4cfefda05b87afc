"""Find runs under the run roots: one run per real layout, not one per file.

A directory (at most `max_depth` levels below its root) is a run when a declared run format
(collectors/runs/formats/, see collectors/runs/format_spec.py) recognises it; the formats are tried
in precedence order and the first names the run; every file a format claims in it belongs to the run
(each format module's docstring says what it recognises).
The walk follows symlinks but never enters a directory twice (symlink loops are reported and
skipped), skips hidden and tool directories, reports unreadable ones and goes on. It is resumable
(`step(budget_s)`) so a slow network filesystem never blocks the collector for long.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

from collectors.runs.format_spec import FileKind, Listing, RunFormat, read_order

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "wandb-cache", "lost+found"})
SNIFF_BYTES = 64 * 1024


@dataclass
class RunLayout:
    path: str
    root: str
    spec: RunFormat  # the format that names the run
    files: list[tuple[FileKind, list[str]]] = field(default_factory=list)  # in first-read order
    claimed_dirs: frozenset[str] = frozenset()  # subdirectories that are part of the run
    hyperparameters: tuple[str, ...] = ()
    title: str | None = None  # the name the run's files give it, if any

    @property
    def format(self) -> str:
        return self.spec.name

    @property
    def dir_name(self) -> str:
        """The run directory below its root (what the run's id is made of)."""
        rel = os.path.relpath(self.path, self.root)
        return os.path.basename(self.root.rstrip(os.sep)) if rel == "." else rel

    @property
    def name(self) -> str:
        return self.title or self.dir_name

    def all_files(self) -> list[str]:
        return [path for _, paths in self.files for path in paths]


class SniffCache:
    """Remembers which files' heads look like a format's, re-reading one only when it changed."""

    def __init__(self, formats: tuple[RunFormat, ...]) -> None:
        self._sniffers = [(f.name, f.sniff) for f in formats if f.sniff is not None]
        self._seen: dict[str, tuple[int, int, str | None]] = {}

    def kind(self, path: str) -> str | None:
        """The name of the first format (by precedence) whose sniff matches the file's head, or None."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        cached = self._seen.get(path)
        if cached is not None and (cached[2] is not None or (cached[0], cached[1]) == (st.st_size, st.st_mtime_ns)):
            return cached[2]
        kind = self._sniff(path)
        self._seen[path] = (st.st_size, st.st_mtime_ns, kind)
        return kind

    def forget_missing(self, alive: set[str]) -> None:
        for path in [p for p in self._seen if p not in alive]:
            del self._seen[path]

    def _sniff(self, path: str) -> str | None:
        try:
            with open(path, "rb") as f:
                head = f.read(SNIFF_BYTES)
        except OSError:
            return None
        text = head.decode("utf-8", errors="replace")
        return next((name for name, sniff in self._sniffers if sniff(text)), None)


def is_candidate(name: str, formats: tuple[RunFormat, ...], parents: tuple[str, ...] = ()) -> bool:
    """Could a file of this name (in directories named `parents`, nearest first) make a directory a run
    (or change its layout)?"""
    return any(f.is_candidate(name) or any(p in f.candidate_dirs for p in parents[: f.file_depth]) for f in formats)


def root_of(path: str, roots: list[str]) -> str | None:
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None


def walk_targets(path: str, roots: list[str], formats: tuple[RunFormat, ...], max_depth: int,
                 levels_up: int) -> dict[str, bool]:
    """The directories to look at again after a file event on `path` -> whether to descend into them:
    a new directory itself, and the directories up to `levels_up` above (a run dir above HF's runs/<x>/)."""
    root = root_of(path, roots)
    if root is None:
        return {}
    exists = os.path.exists(path)
    is_dir = exists and os.path.isdir(path)
    parents = tuple(os.path.basename(p) for p in _parents(path, root, levels_up))
    if exists and not is_dir and not is_candidate(os.path.basename(path), formats, parents):
        return {}  # a checkpoint, a dataset shard...: not something that makes a run
    targets: dict[str, bool] = {}
    if is_dir and depth_below(path, root) <= max_depth:
        targets[path] = True
    parent = path
    for _ in range(levels_up):
        parent = os.path.dirname(parent)
        if len(parent) < len(root):
            break
        targets.setdefault(parent, False)
    return targets


def _parents(path: str, root: str, levels: int) -> list[str]:
    found = []
    for _ in range(levels):
        path = os.path.dirname(path)
        if len(path) <= len(root):
            break
        found.append(path)
    return found


class DiscoveryWalk:
    """One walk over every root; call `step()` until it returns True, then read `layouts`."""

    def __init__(self, roots: list[str], max_depth: int, sniff: SniffCache, formats: tuple[RunFormat, ...]) -> None:
        self.max_depth = max_depth
        self.sniff = sniff
        self.formats = formats
        self.kinds = read_order(formats)
        self.owners = {f.files.name: f for f in formats if f.files is not None}
        self.alias_links = frozenset().union(*(f.alias_links for f in formats))
        self.layouts: dict[str, RunLayout] = {}
        self.problems: dict[str, str] = {}
        self.missing_roots: list[str] = []
        self.visited: set[str] = set()  # directories classified by this walk
        self.sniffed_files: set[str] = set()  # files sniffed (the sniff cache keeps only these)
        self._visited_ids: set[tuple[int, int]] = set()
        self._stack: list[tuple[str, str, int, bool]] = []
        for root in reversed(roots):
            root = os.path.abspath(root)
            if os.path.isdir(root):
                self._stack.append((root, root, 0, True))
            else:
                self.missing_roots.append(root)

    @classmethod
    def targeted(cls, starts: list[tuple[str, str, int, bool]], max_depth: int, sniff: SniffCache,
                 formats: tuple[RunFormat, ...]) -> DiscoveryWalk:
        """A walk of a few directories only: (path, root, depth below root, descend into subdirectories)."""
        walk = cls([], max_depth, sniff, formats)
        walk._stack = list(reversed(starts))
        return walk

    @property
    def done(self) -> bool:
        return not self._stack

    def step(self, budget_s: float) -> bool:
        deadline = time.monotonic() + budget_s
        while self._stack:
            path, root, depth, descend = self._stack.pop()
            self._visit(path, root, depth, descend)
            if time.monotonic() > deadline:
                break
        return self.done

    def _visit(self, path: str, root: str, depth: int, descend: bool) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problems[path] = f"cannot be read ({exc.strerror or exc})"
            return
        key = (st.st_dev, st.st_ino)
        if key in self._visited_ids:
            if os.path.islink(path):
                self.problems[path] = "symlink loop or second link to a directory already walked: skipped"
            return
        self._visited_ids.add(key)
        self.visited.add(path)
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except PermissionError:
            self.problems[path] = "permission denied: skipped"
            return
        except OSError as exc:
            self.problems[path] = f"cannot be listed ({exc.strerror or exc}): skipped"
            return
        files: dict[str, str] = {}
        dirs: dict[str, str] = {}
        for entry in entries:
            try:
                if entry.is_dir():
                    if entry.name in self.alias_links and entry.is_symlink():
                        continue  # another name for a run walked under its own name
                    if not entry.name.startswith(".") and entry.name not in SKIP_DIRS:
                        dirs[entry.name] = entry.path
                elif entry.is_file():
                    files[entry.name] = entry.path
            except OSError:
                continue  # a dangling symlink or an entry that vanished meanwhile
        layout, claimed = self._classify(path, root, files, dirs)
        if layout is not None:
            self.layouts[path] = layout
        if descend and depth < self.max_depth:
            for name in sorted(dirs, reverse=True):
                if name not in claimed:
                    self._stack.append((dirs[name], root, depth + 1, True))

    def _classify(self, path: str, root: str, files: dict[str, str],
                  dirs: dict[str, str]) -> tuple[RunLayout | None, frozenset[str]]:
        listing = Listing(path, root, files, dirs, {})
        if any(f.part_of_run(listing) for f in self.formats):  # decided on names alone: nothing is sniffed
            return None, frozenset()
        sniffable = [files[n] for n in sorted(files) if any(f.sniff_names and f.sniff_names(n) for f in self.formats)]
        self.sniffed_files.update(sniffable)
        listing = replace(listing, sniffed={p: self.sniff.kind(p) for p in sniffable})
        for spec in self.formats:
            match = spec.recognise(listing)
            if match is not None:
                break
        else:
            return None, frozenset()
        layout = RunLayout(path, root, spec, [], match.claimed_dirs, match.hyperparameters, match.name)
        for kind in self.kinds:
            own = match.files.get(kind.name)
            owner = self.owners.get(kind.name)
            paths = own if own is not None else (owner.companions(listing) if owner is not None else [])
            if paths:
                layout.files.append((spec.reading(kind), list(paths)))
        return layout, match.claimed_dirs


def depth_below(path: str, root: str) -> int:
    """How many levels `path` lies below `root` (0: the root itself)."""
    rel = os.path.relpath(path, root)
    return 0 if rel == "." else rel.count(os.sep) + 1
