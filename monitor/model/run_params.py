"""A run's hyperparameters as the registry keeps them: one flat mapping of names to short texts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_TEXT_CHARS = 200
MAX_PARAMS = 500  # hyperparameters kept per run


def shorten(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Nested mappings flattened (`optim.lr`), values as text (JSON for numbers, lists, null),
    keys and values shortened to MAX_TEXT_CHARS, at most MAX_PARAMS entries."""
    flat: dict[str, str] = {}
    _flatten(params, "", flat)
    return flat


MAX_DEPTH = 8  # deeper mappings are kept as one JSON text


def _flatten(params: Mapping[str, Any], prefix: str, into: dict[str, str], depth: int = 0) -> None:
    for key, value in params.items():
        if len(into) >= MAX_PARAMS:
            return
        name = shorten(f"{prefix}{key}")
        if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
            _flatten(value, name + ".", into, depth + 1)
        elif isinstance(value, str):
            into[name] = shorten(value)
        else:
            try:
                text = json.dumps(value, default=str, allow_nan=True)
            except (TypeError, ValueError, RecursionError):  # not JSON (a circular list): its repr
                text = repr(value)
            into[name] = shorten(text)
