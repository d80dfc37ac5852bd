"""Cold start: importing the Lambda handler module in a fresh interpreter, against importing boto3.

The figure is the import's CPU time (median of interleaved runs): on a machine shared with other work,
wall time mostly measures the neighbours. Wall-clock medians are printed beside it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass

from benchmarks.report import Figure

GOAL_RATIO = 1.2
FORBIDDEN = ("click", "rich", "moto")
_PROGRAM = """
import sys, time
wall, cpu = time.perf_counter(), time.process_time()
import {module}
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(cpu, wall, ",".join(sorted(name for name in {forbidden!r} if name in sys.modules)))
"""


@dataclass(frozen=True)
class Import:
    cpu: float
    wall: float
    forbidden: tuple[str, ...]


def time_import(module: str) -> Import:
    """Import ``module`` in a fresh interpreter: its CPU and wall seconds, and which forbidden packages it loaded."""
    program = _PROGRAM.format(module=module, forbidden=FORBIDDEN)
    answer = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    cpu, wall, *loaded = answer.stdout.split()
    return Import(float(cpu), float(wall), tuple(name for name in "".join(loaded).split(",") if name))


def bench_cold_start(runs: int = 15, module: str = "ddb_backup.handler") -> list[Figure]:
    ours: list[Import] = []
    boto: list[Import] = []
    for _ in range(runs):  # interleaved, so load on the machine hits both alike
        ours.append(time_import(module))
        boto.append(time_import("boto3"))
    loaded = sorted({name for run in ours for name in run.forbidden})
    if loaded:
        raise AssertionError(f"importing {module} loaded {loaded}")
    wall_ours, wall_boto = (statistics.median(run.wall for run in runs_) for runs_ in (ours, boto))
    return [
        Figure(
            f"cold start: import {module}, CPU (median of {runs} fresh interpreters)",
            statistics.median(run.cpu for run in ours) * 1000,
            "ms",
            baseline=statistics.median(run.cpu for run in boto) * 1000,
            baseline_label="import boto3 alone",
            goal_text=f"< {GOAL_RATIO}x the baseline",
            goal=lambda figure: figure.ratio is not None and figure.ratio < GOAL_RATIO,
            notes=(
                f"wall-clock medians: {wall_ours * 1000:.0f} ms against {wall_boto * 1000:.0f} ms "
                f"({wall_ours / wall_boto:.2f}x)",
                f"none of {', '.join(FORBIDDEN)} imported",
            ),
        )
    ]
