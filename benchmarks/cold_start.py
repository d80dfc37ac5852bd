"""Cold start: importing the Lambda handler module in a fresh interpreter, against importing boto3."""

from __future__ import annotations

import statistics
import subprocess
import sys

from benchmarks.report import Figure

GOAL_RATIO = 1.2
FORBIDDEN = ("click", "rich", "moto")
_PROGRAM = """
import sys, time
started, cpu = time.perf_counter(), time.process_time()
import {module}
elapsed = time.process_time() - cpu
print(elapsed, ",".join(sorted(name for name in {forbidden!r} if name in sys.modules)))
"""


def import_seconds(module: str) -> tuple[float, list[str]]:
    """Seconds to import ``module`` in a fresh interpreter, and which forbidden packages it loaded."""
    program = _PROGRAM.format(module=module, forbidden=FORBIDDEN)
    answer = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    seconds, loaded = answer.stdout.split(" ", 1)
    return float(seconds), [name for name in loaded.strip().split(",") if name]


def bench_cold_start(runs: int = 7, module: str = "ddb_backup.handler") -> list[Figure]:
    ours: list[float] = []
    boto: list[float] = []
    loaded: set[str] = set()
    for _ in range(runs):  # interleaved, so load on the machine hits both alike
        seconds, forbidden = import_seconds(module)
        ours.append(seconds)
        loaded.update(forbidden)
        boto.append(import_seconds("boto3")[0])
    if loaded:
        raise AssertionError(f"importing {module} loaded {sorted(loaded)}")
    return [
        Figure(
            f"cold start: import {module} (median of {runs} fresh interpreters)",
            statistics.median(ours) * 1000,
            "ms",
            baseline=statistics.median(boto) * 1000,
            baseline_label="import boto3 alone",
            goal_text=f"< {GOAL_RATIO}x the baseline",
            goal=lambda figure: figure.ratio is not None and figure.ratio < GOAL_RATIO,
            notes=(
                f"runs (ms): ours {_spread(ours)}; boto3 {_spread(boto)}",
                f"none of {', '.join(FORBIDDEN)} imported",
            ),
        )
    ]


def _spread(values: list[float]) -> str:
    return f"{min(values) * 1000:.0f}..{max(values) * 1000:.0f}"
