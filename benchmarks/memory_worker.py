"""One memory measurement, run in a fresh interpreter: ``python -m benchmarks.memory_worker MODE ITEMS VERSIONS``.

MODE ``plan`` plans a restore over the synthetic bucket (every key range listed in parallel through
``iter_states``, every state consumed); ``list`` only builds the bucket and reads its listing (the
baseline: what the fixture itself costs). Prints one JSON line: peak RSS, versions, states, seconds.

The peak is this process's own high-water mark (``VmHWM``): on Linux ``ru_maxrss`` keeps the parent's
peak across fork and exec, so a child of a big benchmark runner would report the runner's size.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from benchmarks.synthetic import History, SyntheticStore
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.state import iter_states


def plan(store: SyntheticStore) -> tuple[int, int]:
    history = store.history
    ranges = table_ranges(store, "bench", "orders")
    states = present = 0
    for _, state in iter_states(store, ranges, PointInTime(history.at)):
        if state is not None:
            states += 1
            present += state.present
    return states, present


def listing(store: SyntheticStore) -> tuple[int, int]:
    entries = sum(1 for _ in store.list_versions(store.history.prefix))
    return entries, 0


def peak_rss_kb() -> int:
    """This process's peak resident set in kilobytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kilobytes on Linux


def main(mode: str, items: int, versions: int) -> dict[str, Any]:
    store = SyntheticStore(History(items=items, versions=versions))
    started = time.perf_counter()
    counted, present = (plan if mode == "plan" else listing)(store)
    seconds = time.perf_counter() - started
    peak_kb = peak_rss_kb()
    return {
        "mode": mode,
        "versions": items * versions,
        "counted": counted,
        "present": present,
        "heads": store.heads,
        "peak_mb": peak_kb / 1024,
        "seconds": seconds,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
