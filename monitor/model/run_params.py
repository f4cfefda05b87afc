"""A run's hyperparameters as the registry keeps them: one flat mapping of names to short scalars."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_TEXT_CHARS = 200
MAX_PARAMS = 500  # hyperparameters kept per run (HF's training_args alone has ~120)
MAX_PARAM_CHARS = MAX_TEXT_CHARS  # a key or a text value is shortened to this
MAX_DEPTH = 8  # deeper mappings are kept as one JSON text
ParamValue = str | int | float | bool


def shorten(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten_params(params: Mapping[str, Any]) -> dict[str, ParamValue]:
    """Nested mappings flattened (`optim.lr`); bools, ints and finite floats kept as they are, anything
    else as text (JSON for lists and null); keys and texts shortened to MAX_PARAM_CHARS, at most
    MAX_PARAMS entries."""
    flat: dict[str, ParamValue] = {}
    _flatten(params, "", flat)
    return flat


def _flatten(params: Mapping[str, Any], prefix: str, into: dict[str, ParamValue], depth: int = 0) -> None:
    for key, value in params.items():
        if len(into) >= MAX_PARAMS:
            return
        name = shorten(f"{prefix}{key}", MAX_PARAM_CHARS)
        if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
            _flatten(value, name + ".", into, depth + 1)
        elif isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
            into[name] = value
        elif isinstance(value, str):
            into[name] = shorten(value, MAX_PARAM_CHARS)
        else:
            try:
                text = json.dumps(value, default=str, allow_nan=True)
            except (TypeError, ValueError, RecursionError):  # not JSON (a circular list): its repr
                text = repr(value)
            into[name] = shorten(text, MAX_PARAM_CHARS)
