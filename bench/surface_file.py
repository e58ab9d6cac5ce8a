"""A capacity surface file: every point of a search space measured, each several times.

CSV after a header of `#` comments, one row per measurement:

    # capacity surface (bench/surface.py)
    # space: quick
    max_batch_size,batch_timeout_micros,...,capacity_rps,ci_low,ci_high,repeat,seconds,pruned
    32,1000,2,32,none,0,412.5,398.1,431.0,0,41.2,0

- one column per tuned parameter of the space, named as in the space's file, holding the
  point's value (`true`/`false` for booleans); a row whose parameter cells are all empty is
  the no-batching reference;
- `capacity_rps`: the capacity found (req/s within the SLO), 0 when the point is infeasible;
- `ci_low`, `ci_high`: its 95% interval (empty when there is none; `ci_high` empty = open
  above);
- `repeat`: 0, 1, ... per point, in the order measured;
- `seconds`: what the measurement took, restart included;
- `pruned`: 1 when the search was stopped by the incumbent probe (its capacity is then only
  "below the incumbent"), else 0.

`# space: NAME` (a shipped space or the path of a space file) says which space it covers.

`# rounds: scaled` says each round (every point's repeat N) was recorded in one sitting, and
sittings may differ in speed: the machine under the bench is not the same from one day to the
next (bench/RESULTS.md saw one read 30-40% lower capacities, its CPU 25% slower by the speed
probe). The reader then scales round N to round 0 by the median ratio of the points both
measured (a sitting's effect on every capacity, removed as in a two-way layout) and keeps the
factors in `Surface.round_factors`. What the replay needs, which configuration is best and by
how much, is a ratio, so a surface in round 0's units answers it. bench/surface.py writes it.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FIGURES = ("capacity_rps", "ci_low", "ci_high", "repeat", "seconds", "pruned")
NO_BATCHING_KEY: tuple = ()
ROUNDS_SCALED = "rounds: scaled"  # the comment that asks the reader to scale rounds
MIN_SHARED = 5  # points measured in both rounds before a round's factor is estimated

Key = tuple  # the point's parameter values, in the file's column order; () = no batching


class SurfaceError(Exception):
    """A surface file that cannot be read, in one sentence."""


@dataclass(frozen=True)
class Row:
    capacity_rps: float
    ci_low: float | None
    ci_high: float | None
    repeat: int
    seconds: float
    pruned: bool


@dataclass
class Surface:
    params: list[str]
    points: dict[Key, list[Row]] = field(default_factory=dict)
    space: str | None = None
    round_factors: dict[int, float] = field(default_factory=dict)  # round N / round 0

    def measured(self, key: Key) -> list[Row]:
        """The point's rows that measured a capacity (a pruned search did not)."""
        return [r for r in self.points.get(key, []) if not r.pruned]

    def feasible(self, key: Key) -> list[Row]:
        """The point's measured rows that found a capacity (an infeasible search reads 0)."""
        return [r for r in self.measured(key) if r.capacity_rps > 0]

    def capacity(self, key: Key) -> float:
        """The point's true capacity: the mean of its measured repeats (0 = infeasible)."""
        rows = self.measured(key)
        return statistics.fmean(r.capacity_rps for r in rows) if rows else 0.0

    def interval(self, key: Key) -> tuple[float, float]:
        """The point's 95% interval, the mean of its repeats' (a repeat without one counts as
        its capacity; open above counts as infinite)."""
        rows = self.measured(key)
        if not rows:
            return 0.0, 0.0
        lows = [r.ci_low if r.ci_low is not None else r.capacity_rps for r in rows]
        highs = [
            r.ci_high if r.ci_high is not None else (math.inf if r.ci_low else r.capacity_rps)
            for r in rows
        ]
        return statistics.fmean(lows), statistics.fmean(highs)

    def repeat_cv(self) -> float | None:
        """How far two searches of one point differ: the pooled standard deviation of log
        capacity about each point's mean, over the points measured more than once (feasible
        ones); None with none. It bounds what the surface can rank: two points closer than
        the noise of their means are not told apart by it."""
        squares, dof = 0.0, 0
        for key in self.points:
            logs = [math.log(r.capacity_rps) for r in self.feasible(key)]
            if len(logs) > 1:
                mean = statistics.fmean(logs)
                squares += sum((v - mean) ** 2 for v in logs)
                dof += len(logs) - 1
        return math.sqrt(squares / dof) if dof else None

    def interval_holds_repeat(self) -> float | None:
        """How often one search's 95% interval holds the capacity another search of the same
        point measured (open above counts as infinite; a search without an interval is left
        out); None with no such pair. If the intervals held all of the noise, about 83% would:
        two equally precise estimates differ by sqrt(2) of their own spread. Far below that,
        something the interval does not see moves the capacity from search to search."""
        held = []
        for key in self.points:
            rows = self.feasible(key)
            for a in rows:
                if a.ci_low is None:
                    continue
                high = math.inf if a.ci_high is None else a.ci_high
                held += [a.ci_low <= b.capacity_rps <= high for b in rows if b is not a]
        return sum(held) / len(held) if held else None

    def noise_floor(self) -> float:
        """How far below its mean the best point's capacity may lie: 1.96 standard errors of
        the mean of its repeats (the lower side of a 95% interval); 0 without repeats. A
        winner above best x (1 - floor) is as close to the best as the surface can tell."""
        cv = self.repeat_cv()
        repeats = len(self.measured(self.best_key))
        if cv is None or repeats == 0:
            return 0.0
        return 1.0 - math.exp(-1.96 * cv / math.sqrt(repeats))

    @property
    def best_key(self) -> Key:
        return max(self.points, key=self.capacity)

    @property
    def best(self) -> float:
        return self.capacity(self.best_key)

    def as_params(self, key: Key) -> dict[str, object]:
        return dict(zip(self.params, key, strict=True)) if key else {}

    def key_of(self, params: dict[str, object]) -> Key:
        return tuple(params[name] for name in self.params) if params else NO_BATCHING_KEY


def parse_value(text: str) -> object:
    """A cell as the space holds it: a whole number, true/false, or a string."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return text


def format_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SurfaceError(
            f"there is no surface file at {path}; record one with bench/surface.py"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SurfaceError(f"cannot read the surface file {path} ({exc})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def read_surface(path: str | Path, scale_rounds: bool = True) -> Surface:
    """The surface in `path`; SurfaceError (one sentence naming the line) when malformed.
    `scale_rounds=False`: the rows as recorded, even when the file asks for its rounds scaled."""
    path = Path(path)
    space = None
    rounds_differ = False
    header: list[str] | None = None
    surface: Surface | None = None
    for number, line in _lines(path):
        if line.startswith("#"):
            comment = line[1:].strip()
            if comment.startswith("space:"):
                space = comment.removeprefix("space:").strip() or None
            rounds_differ = rounds_differ or comment.startswith(ROUNDS_SCALED)
            continue
        cells = next(csv.reader([line]))
        where = f"{path}, line {number}"
        if header is None:
            header = [c.strip() for c in cells]
            if header[-len(FIGURES) :] != list(FIGURES) or len(header) <= len(FIGURES):
                raise SurfaceError(
                    f"{where}: the header must be one column per parameter, then "
                    f"{', '.join(FIGURES)}; it is {', '.join(header)}"
                )
            surface = Surface(header[: -len(FIGURES)], space=space)
            continue
        assert surface is not None
        if len(cells) != len(header):
            raise SurfaceError(f"{where} has {len(cells)} cells, the header {len(header)}")
        values = [c.strip() for c in cells[: len(surface.params)]]
        if any(values) and not all(values):
            raise SurfaceError(f"{where}: a point needs every parameter (all empty = no batching)")
        key = tuple(parse_value(v) for v in values) if all(values) else NO_BATCHING_KEY
        surface.points.setdefault(key, []).append(_row(cells[len(surface.params) :], where))
    if surface is None or not surface.points:
        raise SurfaceError(f"{path} holds no measurement: a header row and one row per search")
    if surface.best <= 0:
        raise SurfaceError(f"{path}: no point has a capacity above 0, so there is no best")
    return rounds_scaled(surface) if rounds_differ and scale_rounds else surface


def rounds_scaled(surface: Surface) -> Surface:
    """Every round in round 0's units: round N divided by the median, over the points measured
    in both, of its capacity over round 0's (geometric: a sitting scales capacities). A round
    sharing fewer than MIN_SHARED measured points with round 0 keeps a factor of 1."""
    by_round: dict[int, dict[Key, float]] = {}
    for key in surface.points:
        for row in surface.feasible(key):
            by_round.setdefault(row.repeat, {})[key] = row.capacity_rps
    first = by_round.get(0, {})
    factors = {0: 1.0}
    for number, capacities in sorted(by_round.items()):
        shared = [math.log(c / first[k]) for k, c in capacities.items() if k in first]
        if number and len(shared) >= MIN_SHARED:
            factors[number] = math.exp(statistics.median(shared))
    out = Surface(list(surface.params), space=surface.space, round_factors=factors)
    for key, rows in surface.points.items():
        out.points[key] = [_scaled(r, 1 / factors.get(r.repeat, 1.0)) for r in rows]
    return out


def _row(cells: list[str], where: str) -> Row:
    figures = dict(zip(FIGURES, (c.strip() for c in cells), strict=True))

    def number(name: str, optional: bool = False) -> float | None:
        text = figures[name]
        if optional and text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            raise SurfaceError(f"{where}: {name} must be a number, not {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise SurfaceError(f"{where}: {name} must be a number >= 0, not {text!r}")
        return value

    if figures["pruned"] not in ("0", "1"):
        raise SurfaceError(f"{where}: pruned must be 0 or 1, not {figures['pruned']!r}")
    repeat = number("repeat")
    if repeat is None or repeat != int(repeat):
        raise SurfaceError(f"{where}: repeat must be a whole number, not {figures['repeat']!r}")
    return Row(
        capacity_rps=number("capacity_rps") or 0.0,
        ci_low=number("ci_low", optional=True),
        ci_high=number("ci_high", optional=True),
        repeat=int(repeat),
        seconds=number("seconds") or 0.0,
        pruned=figures["pruned"] == "1",
    )


HEADER_TEXT = """\
# capacity surface (bench/surface.py): one row per search of one point
# columns: one per tuned parameter (all empty = no batching), then capacity_rps (req/s within
#   the SLO, 0 = infeasible), ci_low and ci_high (its 95% interval; empty = none, ci_high
#   empty = open above), repeat (0, 1, ... per point), seconds (the search, restart
#   included), pruned (1 = stopped by the incumbent probe)
"""


def write_surface(path: Path, surface: Surface, comments: list[str] = ()) -> None:
    """The whole file, rows in each point's repeat order (written to a temporary file first,
    so a stopped run never leaves half a file)."""
    lines = [HEADER_TEXT.rstrip("\n")]
    if surface.space:
        lines.append(f"# space: {surface.space}")
    lines += [f"# {c}" for c in comments]
    lines.append(",".join([*surface.params, *FIGURES]))
    for key, rows in surface.points.items():
        values = [format_value(v) for v in key] if key else [""] * len(surface.params)
        for row in rows:
            lines.append(
                ",".join(
                    [
                        *values,
                        f"{row.capacity_rps:g}",
                        "" if row.ci_low is None else f"{row.ci_low:g}",
                        "" if row.ci_high is None else f"{row.ci_high:g}",
                        str(row.repeat),
                        f"{row.seconds:.1f}",
                        "1" if row.pruned else "0",
                    ]
                )
            )
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(path)


def shifted(surface: Surface, scale: float, param: str | None) -> Surface:
    """The surface as it was before a change: capacities times `scale`, and each point
    measuring what the point one value of `param` further up measures now (the best moved)."""
    if param is not None and param not in surface.params:
        raise SurfaceError(f"--warm-shift {param}: the surface has no such parameter")
    index = surface.params.index(param) if param else None
    values = sorted({k[index] for k in surface.points if k}, key=_order) if param else []
    out = Surface(list(surface.params), space=surface.space)
    for key in surface.points:
        source = key
        if key and index is not None:
            position = values.index(key[index])
            moved = values[min(position + 1, len(values) - 1)]
            candidate = (*key[:index], moved, *key[index + 1 :])
            source = candidate if candidate in surface.points else key
        out.points[key] = [_scaled(r, scale) for r in surface.points[source]]
    return out


def _order(value: object) -> tuple:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def _scaled(row: Row, scale: float) -> Row:
    def times(value: float | None) -> float | None:
        return None if value is None else value * scale

    return dataclasses.replace(
        row,
        capacity_rps=row.capacity_rps * scale,
        ci_low=times(row.ci_low),
        ci_high=times(row.ci_high),
    )
