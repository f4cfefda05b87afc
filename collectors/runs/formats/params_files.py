"""Reading hyperparameter files (YAML or JSON) for the formats' `read_params`: any tree, flattened.

YAML written by Python tools carries Python tags (Lightning's hparams.yaml: `!!python/tuple`,
`!!python/object:...`); they are read as the plain lists, maps or text beneath the tag, never
constructed. A file that does not parse raises ValueError (its source keeps what it read of it before).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from collectors.runs.parsed import ParamValue, flatten_params


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader that reads any tag as the plain node beneath it."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_PlainLoader.add_multi_constructor("", _untagged)


def load_tree(path: str, data: bytes) -> Any:
    """A YAML or JSON file's content (JSON first for *.json); raises ValueError when unreadable."""
    text = data.decode("utf-8", errors="replace")
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        return yaml.load(text, Loader=_PlainLoader)
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {str(exc).splitlines()[0][:120]}") from None


def read_tree_params(path: str, data: bytes) -> dict[str, ParamValue]:
    """A YAML or JSON hyperparameters file, flattened (`optimizer.lr`)."""
    tree = load_tree(path, data)
    return flatten_params(tree if isinstance(tree, dict) else {"value": tree})
