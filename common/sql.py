"""Query expressions that PostgreSQL and SQLite spell differently: the seconds between two
timestamps, and a continuous percentile (PostgreSQL's own; on SQLite the callers rank rows with a
window function and interpolate exactly as `percentile_cont` does: `percentile_of_sorted`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db.models import Aggregate, Expression, FloatField, Func


class SecondsBetween(Func):
    """`end - start` in seconds, as a float (SQLite's date functions keep milliseconds)."""

    output_field = FloatField()
    arity = 2

    def __init__(self, start: Any, end: Any, **extra: Any) -> None:
        super().__init__(start, end, **extra)

    def _operands(self, compiler: Any) -> tuple[str, str, list[Any]]:
        start_sql, start_params = compiler.compile(self.source_expressions[0])
        end_sql, end_params = compiler.compile(self.source_expressions[1])
        return start_sql, end_sql, [*end_params, *start_params]

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, list[Any]]:
        start, end, params = self._operands(compiler)
        return f"(EXTRACT(EPOCH FROM ({end} - {start}))::double precision)", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        start, end, params = self._operands(compiler)
        return f"((julianday({end}) - julianday({start})) * 86400.0)", params


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Expression | str, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("a percentile's fraction lies between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def percentile_positions(size: int, fraction: float) -> tuple[int, int]:
    """The two 0-based positions among `size` sorted values that `percentile_cont` reads."""
    low = math.floor(fraction * (size - 1))
    return low, min(low + 1, size - 1)


def percentile_of_sorted(values: Mapping[int, float], size: int, fraction: float) -> float:
    """`percentile_cont` over `size` sorted values, given the values at (at least) the two
    positions it reads: linear interpolation between the closest ranks."""
    exact = fraction * (size - 1)
    low, high = percentile_positions(size, fraction)
    return values[low] + (exact - low) * (values[high] - values[low])
