"""The values Grafana's server-side expressions pass between nodes (``pkg/expr/mathexp`` types).

A data query or expression yields a list of values: labelled Numbers (an instant vector element),
labelled Series (a range-query series), bare Scalars (a literal in a math expression) or NoData.
``None`` stands for Grafana's null (a nil ``*float64``), which differs from NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ("NO_DATA", "Labels", "NoData", "Number", "Scalar", "SeriesValue", "Value", "contains")

Labels = dict[str, str]


@dataclass(frozen=True, slots=True)
class Number:
    labels: Labels
    value: float | None


@dataclass(frozen=True, slots=True)
class SeriesValue:
    labels: Labels
    points: tuple[tuple[int, float | None], ...]
    """(timestamp ms, value) in time order."""


@dataclass(frozen=True, slots=True)
class Scalar:
    value: float | None


class NoData:
    """A query or expression that returned nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NoData"


NO_DATA: Final = NoData()

Value = Number | SeriesValue | Scalar | NoData


def contains(big: Labels, small: Labels) -> bool:
    """``data.Labels.Contains``: every pair of ``small`` is in ``big``."""
    return all(big.get(k) == v for k, v in small.items())
