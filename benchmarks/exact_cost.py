"""Exact mode's cost: how many metadata reads (HEAD) a restore to TIME makes, for a history where 10% of
the items changed in the 24 h after TIME, against the bound (one per such item) and against reading
every version's metadata."""

from __future__ import annotations

from benchmarks.report import Figure
from benchmarks.synthetic import AFTER_24H, History, SyntheticStore
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.state import iter_states


def bench_exact_cost(items: int = 25_000, versions: int = 4) -> list[Figure]:
    history = History(items=items, versions=versions, after_percent=10)
    store = SyntheticStore(history)
    reads = states = straddling = 0
    for _, state in iter_states(store, table_ranges(store, "bench", "orders"), PointInTime(history.at)):
        if state is not None:
            states += 1
            reads += state.metadata_reads
            if state.metadata_reads and history.kind(history.item_of(state.object_key)) != AFTER_24H:
                straddling += state.metadata_reads
    if states != items or reads != store.heads:
        raise AssertionError(f"{states} states of {items} items; {reads} reads counted, {store.heads} HEADs made")
    changed = history.changed_after()
    total = items * versions
    return [
        Figure(
            f"exact mode: metadata reads, {items:,} items x {versions} versions, "
            f"{changed:,} changed in the 24 h after T",
            reads,
            "HEADs",
            baseline=changed,
            baseline_label="items changed in the 24 h after T",
            goal_text="<= one per item changed after T",
            goal=lambda figure: figure.value <= changed,
            notes=(
                f"{reads - straddling:,} reads on items changed after T; {straddling:,} on items changed before T "
                "whose write landed after T - 1 s (S3 keeps write times to the second, so only the metadata can tell)",
            ),
        ),
        Figure(
            "exact mode: metadata reads as a share of versions",
            100 * reads / total,
            "%",
            baseline=100.0,
            baseline_label="reading every version's metadata",
            notes=(f"{reads:,} of {total:,} versions read; the others decided by S3's write time",),
        ),
    ]
