"""How a benchmark reports: its figure, the baseline measured in the same run, their ratio, the goal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    """One measured figure. ``goal`` tells PASS from MISS; ``goal_text`` says it in words."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    goal_text: str = ""
    goal: Callable[[Figure], bool] | None = field(default=None, compare=False)
    notes: tuple[str, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "info"
        return "PASS" if self.goal(self) else "MISS"

    def lines(self) -> list[str]:
        out = [f"{self.name}: {_number(self.value)} {self.unit}"]
        if self.baseline is not None:
            out.append(f"  baseline ({self.baseline_label}): {_number(self.baseline)} {self.unit}")
        if self.ratio is not None:
            out.append(f"  ratio: {self.ratio:.2f}x")
        if self.goal_text:
            out.append(f"  goal: {self.goal_text} -> {self.verdict}")
        out += [f"  {note}" for note in self.notes]
        return out


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def print_figures(title: str, figures: list[Figure]) -> None:
    print(f"\n== {title}", flush=True)
    for figure in figures:
        print("\n".join(figure.lines()), flush=True)
