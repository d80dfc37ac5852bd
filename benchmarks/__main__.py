"""``python -m benchmarks [NAME ...]``: run the benchmarks (all by default) and print every figure with
its baseline, ratio and goal. ``--list`` names them."""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

from benchmarks.boto_cpu import bench_boto3_cpu
from benchmarks.capture_bench import bench_capture, bench_capture_boto3, bench_capture_moto
from benchmarks.cold_start import bench_cold_start
from benchmarks.exact_cost import bench_exact_cost
from benchmarks.http_bench import bench_capture_http, bench_listing_http, bench_restore_http
from benchmarks.memory_bench import bench_memory
from benchmarks.report import Figure, print_figures
from benchmarks.restore_bench import bench_restore

BENCHMARKS: dict[str, tuple[str, Callable[[], list[Figure]]]] = {
    "capture-http": ("Capture through the handler's real clients over HTTP (fake S3, 20 ms)", bench_capture_http),
    "restore-http": ("Restore through the CLI's clients over HTTP (fake S3 + DynamoDB, 20 ms)", bench_restore_http),
    "listing-http": ("Listing: CPU per 1,000-version page through boto3 over HTTP", bench_listing_http),
    "capture": ("Our code alone: capture on an in-memory S3 with 20 ms per request", bench_capture),
    "capture-boto3": ("Capture through boto3 (network replaced by a 20 ms sleep)", bench_capture_boto3),
    "boto3-cpu": ("Where capture's time goes: CPU per request", bench_boto3_cpu),
    "capture-moto": ("Capture through moto's HTTP server (realism, no goal)", bench_capture_moto),
    "restore": (
        "Our code alone: restore on in-memory fakes, 100,000 items x 5 versions, 20 ms per request",
        bench_restore,
    ),
    "exact": ("Exact mode's cost: metadata reads", bench_exact_cost),
    "memory": ("Memory: planning a restore over 1M and 4M versions", bench_memory),
    "cold-start": ("Cold start: importing the handler", bench_cold_start),
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--list", action="store_true", help="name the benchmarks and stop")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: use one of {', '.join(BENCHMARKS)}")
    if args.list:
        for name, (title, _) in BENCHMARKS.items():
            print(f"{name:14} {title}")
        return 0
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"load average at start {os.getloadavg()[0]:.2f} (shared machine: figures are noisy)"
    )
    started = time.perf_counter()
    verdicts: list[str] = []
    for name in args.names or list(BENCHMARKS):
        title, run = BENCHMARKS[name]
        began = time.perf_counter()
        figures = run()
        print_figures(f"{title}  [{time.perf_counter() - began:.0f} s]", figures)
        verdicts += [f"{figure.verdict}  {figure.name}" for figure in figures if figure.goal is not None]
    print(f"\n== Summary ({time.perf_counter() - started:.0f} s in all; load average now {os.getloadavg()[0]:.2f})")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
