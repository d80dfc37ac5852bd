"""Memory: peak RSS of planning a restore over 1,000,000 and 4,000,000 versions of a synthetic bucket,
each in a fresh interpreter, against the same interpreter only reading the synthetic listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import Figure

GOAL_MB = 400
GOAL_GROWTH = 1.5  # the peak may grow by less than half while the versions quadruple
ROOT = Path(__file__).resolve().parent.parent


def measure(mode: str, items: int, versions: int = 4) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    answer = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_worker", mode, str(items), str(versions)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(answer.stdout)
    if mode == "plan" and result["counted"] != items:
        raise AssertionError(f"planned {result['counted']} items of {items}")
    return result


def bench_memory(small_items: int = 250_000, versions: int = 4, factor: int = 4) -> list[Figure]:
    sizes = (small_items, small_items * factor)
    plans = [measure("plan", items, versions) for items in sizes]
    lists = [measure("list", items, versions) for items in sizes]
    figures = [
        Figure(
            f"restore planning, peak RSS over {plan['versions']:,} versions",
            plan["peak_mb"],
            "MB",
            baseline=listed["peak_mb"],
            baseline_label="the same interpreter only reading the synthetic listing",
            goal_text=f"< {GOAL_MB} MB",
            goal=lambda figure: figure.value < GOAL_MB,
            notes=(
                f"{plan['counted']:,} items planned in {plan['seconds']:.1f} s ({plan['heads']:,} HEADs); "
                f"listing alone {listed['seconds']:.1f} s",
            ),
        )
        for plan, listed in zip(plans, lists, strict=True)
    ]
    small, large = plans
    figures.append(
        Figure(
            f"restore planning, peak RSS growth as versions grow {factor}x",
            large["peak_mb"] / small["peak_mb"],
            "x",
            baseline=lists[1]["peak_mb"] / lists[0]["peak_mb"],
            baseline_label="growth of the listing alone",
            goal_text=f"< {GOAL_GROWTH}x",
            goal=lambda figure: figure.value < GOAL_GROWTH,
            notes=(
                f"above the baseline: {small['peak_mb'] - lists[0]['peak_mb']:.1f} MB "
                f"-> {large['peak_mb'] - lists[1]['peak_mb']:.1f} MB",
            ),
        )
    )
    return figures
