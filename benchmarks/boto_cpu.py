"""Where a capture's time goes: CPU per PutObject in boto3 (without a network, and against moto's HTTP
server) against our own CPU per record, and which parts of botocore the requests spend it in."""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any

from benchmarks.boto_fake import sleeping_s3_client
from benchmarks.capture_bench import run_capture, stream_batch
from benchmarks.report import Figure
from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.records import StreamRecord
from ddb_backup.lab.emulator import local_credentials, moto_server
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store

# (file suffix, function) of botocore steps whose cumulative time we report, as a share of the call.
PHASES = {
    "SigV4 signing": ("botocore/signers.py", "sign"),
    "response parsing": ("botocore/parsers.py", "parse"),
    "request headers": ("botocore/endpoint.py", "prepare_request"),
    "endpoint rules": ("botocore/client.py", "_resolve_endpoint_ruleset"),
    "parameter validation": ("botocore/validate.py", "validate"),
    "serialisation": ("botocore/serialize.py", "serialize_to_request"),
}
TOTAL = ("botocore/client.py", "_make_api_call")


def cpu_per_call(call: Callable[[int], Any], calls: int) -> float:
    """Seconds of this thread's CPU per ``call(i)`` (the best of three rounds, after a warm-up)."""
    for index in range(min(calls, 20)):
        call(index)
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        for index in range(calls):
            call(index)
        best = min(best, (time.thread_time() - started) / calls)
    return best


def _sample_put(store: S3Store) -> Callable[[int], Any]:
    raw = stream_batch(4, 1)[1]
    capture = Capture(store, CaptureSettings(prefix="bench"))
    write = capture.writes_for(StreamRecord(raw))[0]
    metadata = write.meta.to_s3()

    def put(index: int) -> Any:
        return store.put(f"{write.object_key}-{index}", write.body or b"", metadata)

    return put


def capture_cpu_per_record(records: int = 1000, items: int = 250) -> float:
    """Our own CPU per record: a batch, one thread, an in-memory store without latency."""
    batch = stream_batch(records, items)
    started = time.process_time()
    run_capture(MemoryStore(), batch, 1)
    return (time.process_time() - started) / records


def phase_shares(call: Callable[[int], Any], calls: int) -> dict[str, float]:
    profile = cProfile.Profile()
    profile.enable()
    for index in range(calls):
        call(index)
    profile.disable()
    stats: dict[tuple[str, int, str], Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    cumulative: dict[tuple[str, str], float] = {}
    for (filename, _, function), row in stats.items():
        for phase in (*PHASES.values(), TOTAL):
            if filename.endswith(phase[0]) and function == phase[1]:
                cumulative[phase] = cumulative.get(phase, 0.0) + row[3]
    total = cumulative.get(TOTAL, 0.0) or 1.0
    return {name: cumulative.get(phase, 0.0) / total for name, phase in PHASES.items()}


def bench_boto3_cpu(calls: int = 300, moto_calls: int = 100, records: int = 1000) -> list[Figure]:
    with local_credentials():
        offline = _sample_put(S3Store(sleeping_s3_client(0.0), "bench"))
        boto_cpu = cpu_per_call(offline, calls)
        shares = phase_shares(offline, calls)
        with moto_server() as url:
            client = make_client("s3", endpoint_url=url, region="us-east-1")
            client.create_bucket(Bucket="bench")
            client.put_bucket_versioning(Bucket="bench", VersioningConfiguration={"Status": "Enabled"})
            moto_cpu = cpu_per_call(_sample_put(S3Store(client, "bench")), moto_calls)
    ours = capture_cpu_per_record(records, max(1, records // 4))
    split = ", ".join(f"{name} {share:.0%}" for name, share in sorted(shares.items(), key=lambda kv: -kv[1]))
    return [
        Figure(
            "boto3 CPU per PutObject, network left out",
            boto_cpu * 1000,
            "ms",
            baseline=ours * 1000,
            baseline_label="capture's own CPU per record, in-memory store",
            notes=(
                f"of boto3's time (cProfile): {split}",
                f"one interpreter's ceiling: about {1 / (boto_cpu * 1.025 + ours):,.0f} records/s "
                "(1.025 requests per record)",
            ),
        ),
        Figure(
            "boto3 CPU per PutObject against moto's HTTP server (client thread only)",
            moto_cpu * 1000,
            "ms",
            baseline=boto_cpu * 1000,
            baseline_label="network left out",
        ),
    ]
