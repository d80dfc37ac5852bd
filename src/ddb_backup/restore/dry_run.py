"""A dry run's pass over the ranges: every item decided and counted (metadata reads included), no
image read and nothing written; each item present at T shown to ``on_plan``."""

from __future__ import annotations

from collections.abc import Callable

from ddb_backup.restore.items import ItemFlow
from ddb_backup.restore.options import PlanLine
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.state import iter_states
from ddb_backup.restore.sync import name_digest


def plan_only(
    items: ItemFlow, ranges: list[KeyRange], on_plan: PlanLine | None, show: Callable[[], None]
) -> set[bytes]:
    """Returns the name digests of the items present at T when ``--sync`` is asked (else empty): what
    the deletes a dry run counts are checked against (``sync.delete_absent``)."""
    present: set[bytes] = set()
    for _, state in iter_states(items.store, ranges, items.when, workers=items.list_workers()):
        if state is None:
            continue
        items.count(state)
        if state.present:
            if items.options.sync:
                present.add(name_digest(state.object_key))
            if on_plan is not None:
                on_plan(state)
        show()
    return present
