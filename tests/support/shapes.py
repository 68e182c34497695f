"""Comparing our responses with Nova's API samples: same keys, value types and nesting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_diff(ours: Any, sample: Any, path: str = "$",
               nullable: frozenset[str] = frozenset()) -> list[str]:
    """Every place where ``ours`` differs in shape from ``sample`` (empty when they match).

    A key named in ``nullable`` may be null on one side and a value on the other (fields
    whose value depends on data, e.g. ``device``); list items are all compared with the
    sample's first item.
    """
    key = path.rsplit(".", 1)[-1]
    if key in nullable and (ours is None or sample is None):
        return []
    if _kind(ours) != _kind(sample):
        return [f"{path}: {_kind(ours)} where the sample has {_kind(sample)}"]
    if isinstance(sample, dict):
        problems = []
        missing = sorted(set(sample) - set(ours))
        extra = sorted(set(ours) - set(sample))
        if missing:
            problems.append(f"{path}: missing keys {missing}")
        if extra:
            problems.append(f"{path}: extra keys {extra}")
        for name in set(sample) & set(ours):
            problems += shape_diff(ours[name], sample[name], f"{path}.{name}", nullable)
        return problems
    if isinstance(sample, list) and sample:
        problems = []
        for i, item in enumerate(ours):
            problems += shape_diff(item, sample[0], f"{path}[{i}]", nullable)
        return problems
    return []


def assert_same_shape(ours: Any, sample: Any, nullable: frozenset[str] = frozenset()) -> None:
    problems = shape_diff(ours, sample, nullable=nullable)
    assert not problems, "response differs from the Nova sample:\n" + "\n".join(problems)
