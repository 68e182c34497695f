"""The one results table: each metric for the ceiling and both stackvol faces, side by side.

A row holds one number per column (``ceiling``, ``Nova``, ``Cinder``) and, optionally, a
:class:`Goal`. Goals may be relative to the ceiling, so they are judged when the table is
drawn, after every column is in: ``met`` is ``yes`` when every face measured meets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

CEILING, NOVA, CINDER = "ceiling", "Nova", "Cinder"
FACES = (NOVA, CINDER)
HEADINGS = ("metric", CEILING, NOVA, f"{NOVA}/{CEILING}", CINDER, f"{CINDER}/{CEILING}",
            "target", "met")
MiB = 1024 * 1024
NOTHING = "\u2013"  # an en dash, as in the table: not measurable there


@dataclass(frozen=True)
class Goal:
    text: str
    meets: Callable[[float, float | None], bool]  # (a face's value, the ceiling's or None)


def at_least(rate: float, share: float | None = None) -> Goal:
    """A rate at least ``rate``/s and, with ``share``, that share of the ceiling's."""
    parts = [f">= {rate:,.0f}/s"] if rate else []
    if share is not None:
        parts.append(f">= {share:.0%} of ceiling")

    def meets(value: float, ceiling: float | None) -> bool:
        relative = share is None or (ceiling is not None and value >= share * ceiling)
        return value >= rate and relative

    return Goal(" and ".join(parts), meets)


def below(limit: float, unit: str) -> Goal:
    return Goal(f"p50 < {fmt(limit, unit)}" if unit == "latency" else f"< {fmt(limit, unit)}",
                lambda value, _ceiling: value < limit)


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "rate":
        return f"{value:,.0f}/s"
    if unit == "latency":
        return f"{value * 1000:.2f} ms"
    if unit == "memory":
        return f"{value / MiB:.1f} MiB"
    return f"{value:+.0%}"  # "growth"


def ratio(value: float, ceiling: float, unit: str) -> str:
    """Rates as a share of the ceiling (higher is better), latencies as a multiple of it."""
    if math.isnan(value) or math.isnan(ceiling) or ceiling <= 0:
        return "n/a"
    if unit == "rate":
        return f"{value / ceiling:.0%}"
    return f"{value / ceiling:.1f}x"


@dataclass
class Row:
    metric: str
    unit: str  # rate | latency | memory | growth
    goal: Goal | None = None
    values: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # a cell's own wording, if any
    no_ceiling: bool = False  # NOTHING: the ceiling has nothing to measure here

    def cell(self, column: str) -> str:
        if column in self.texts:
            return self.texts[column]
        if column in self.values:
            return fmt(self.values[column], self.unit)
        return NOTHING if column == CEILING and self.no_ceiling else ""

    def relative(self, face: str) -> str:
        if face in self.values and CEILING in self.values:
            return ratio(self.values[face], self.values[CEILING], self.unit)
        return ""

    def met(self) -> bool | None:
        """Every face measured meets the goal (None: no goal or nothing measured)."""
        measured = [self.values[f] for f in FACES if f in self.values]
        if self.goal is None or not measured:
            return None
        ceiling = self.values.get(CEILING)
        return all(not math.isnan(v) and self.goal.meets(v, ceiling) for v in measured)


class Results:
    """Rows by metric, in the order first reported."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def declare(self, metric: str, unit: str, goal: Goal | None = None,
                no_ceiling: bool = False) -> None:
        """A row in its place, before (or whether or not) anything is measured for it."""
        self.rows.setdefault(metric, Row(metric, unit, goal, no_ceiling=no_ceiling))

    def put(self, metric: str, column: str, value: float, unit: str,
            goal: Goal | None = None, text: str | None = None,
            no_ceiling: bool = False) -> None:
        row = self.rows.setdefault(metric, Row(metric, unit, goal, no_ceiling=no_ceiling))
        row.values[column] = value
        if text is not None:
            row.texts[column] = text

    def missed(self) -> bool:
        return any(row.met() is False for row in self.rows.values())

    def table(self) -> str:
        cells = [HEADINGS] + [
            (r.metric, r.cell(CEILING), r.cell(NOVA), r.relative(NOVA), r.cell(CINDER),
             r.relative(CINDER), r.goal.text if r.goal else "",
             {True: "yes", False: "NO", None: ""}[r.met()])
            for r in self.rows.values()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(HEADINGS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)
