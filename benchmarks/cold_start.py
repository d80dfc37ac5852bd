"""Cold start: importing the Lambda handler module in a fresh interpreter, against importing boto3.

Like for like, both imports read compiled bytecode (a bytecode cache in a temporary directory, warmed
once): boto3's is in its wheel, ours would be in a deployment that ships ``.pyc`` files. The same
import from source (no bytecode, as with ``PYTHONDONTWRITEBYTECODE`` or a zip without ``.pyc`` on
Lambda's read-only file system) is printed beside it.

The figure is CPU time (median of interleaved runs): on a machine shared with other work, wall time
mostly measures the neighbours. Wall-clock medians are printed too.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from benchmarks.report import Figure

GOAL_RATIO = 1.2
FORBIDDEN = ("click", "rich", "moto")
_PROGRAM = """
import sys, time
{preload}
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


def time_import(module: str, env: Mapping[str, str] | None = None, *, after: str = "") -> Import:
    """Import ``module`` in a fresh interpreter (after importing ``after``, untimed): its CPU and wall
    seconds, and which forbidden packages it loaded."""
    program = _PROGRAM.format(module=module, forbidden=FORBIDDEN, preload=f"import {after}" if after else "")
    answer = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, env=env)
    cpu, wall, *loaded = answer.stdout.split()
    return Import(float(cpu), float(wall), tuple(name for name in "".join(loaded).split(",") if name))


def _environments(cache: str) -> tuple[dict[str, str], dict[str, str]]:
    """(bytecode cached in ``cache``, no bytecode for our sources)."""
    plain = {name: value for name, value in os.environ.items() if name not in ("PYTHONDONTWRITEBYTECODE",)}
    return {**plain, "PYTHONPYCACHEPREFIX": cache}, {**plain, "PYTHONDONTWRITEBYTECODE": "1"}


def _median(runs: list[Import], field: str = "cpu") -> float:
    return statistics.median(getattr(run, field) for run in runs)


def bench_cold_start(runs: int = 15, module: str = "ddb_backup.handler") -> list[Figure]:
    ours: list[Import] = []
    boto: list[Import] = []
    source: list[Import] = []
    native: list[Import] = []
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        cached, uncached = _environments(cache)
        time_import(f"boto3, {module}", cached)  # writes the bytecode cache
        for _ in range(runs):  # interleaved, so load on the machine hits all alike
            ours.append(time_import(module, cached))
            boto.append(time_import("boto3", cached))
            source.append(time_import(module, uncached))
            native.append(time_import("awscrt.s3, awscrt.auth, awscrt.http, awscrt.io", cached, after=module))
    loaded = sorted({name for run in ours + source for name in run.forbidden})
    if loaded:
        raise AssertionError(f"importing {module} loaded {loaded}")
    boto_cpu = _median(boto)
    return [
        Figure(
            f"cold start: import {module}, CPU, bytecode compiled (median of {runs} fresh interpreters)",
            _median(ours) * 1000,
            "ms",
            baseline=boto_cpu * 1000,
            baseline_label="import boto3 alone",
            goal_text=f"< {GOAL_RATIO}x the baseline",
            goal=lambda figure: figure.ratio is not None and figure.ratio < GOAL_RATIO,
            notes=(
                f"wall-clock medians: {_median(ours, 'wall') * 1000:.0f} ms against "
                f"{_median(boto, 'wall') * 1000:.0f} ms ({_median(ours, 'wall') / _median(boto, 'wall'):.2f}x)",
                f"from source, without bytecode for our package: {_median(source) * 1000:.0f} ms CPU "
                f"({_median(source) / boto_cpu:.2f}x): ship .pyc files for the Lambda runtime's Python",
                f"none of {', '.join(FORBIDDEN)} imported",
                f"then the native S3 client (awscrt), imported when the function builds its store: "
                f"{_median(native) * 1000:.1f} ms CPU more (wall {_median(native, 'wall') * 1000:.1f} ms)",
            ),
        )
    ]
