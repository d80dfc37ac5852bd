"""The simulated Lambda delivery follows AWS's documented checkpoint and retry rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from builders import put
from ddb_backup.lab.lambda_sim import DidNotConverge, ShardDelivery, checkpoint

A = {"pk": {"S": "a"}}
BATCH = [put({"pk": {"S": f"i{n}"}}, seq=n) for n in range(10, 15)]


def failures(*sequences: Any) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in sequences]}


@pytest.mark.parametrize(
    ("response", "retry_from"),
    [
        (None, None),
        ({}, None),
        (failures(), None),
        (failures("12"), 2),
        (failures("14", "11"), 1),  # the lowest listed sequence number is the checkpoint
        (failures("99"), 0),  # not a record of the batch: the whole batch
        (failures(""), 0),
        (failures(None), 0),
        ({"batchItemFailures": [{"itemId": "12"}]}, 0),
        ({"batchItemFailures": "12"}, 0),
        ("ok", 0),
    ],
)
def test_where_lambda_retries_from(response: Any, retry_from: int | None) -> None:
    assert checkpoint(BATCH, response) == retry_from


class Scripted:
    """A function that answers from a script of failures, and remembers what it was given."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[list[str]] = []
        self.closed = False

    def __call__(self, records: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        self.calls.append([r["dynamodb"]["SequenceNumber"] for r in records])
        answer = self.script.pop(0) if self.script else failures()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    def close(self) -> None:
        self.closed = True


def test_a_partial_failure_is_redelivered_from_the_lowest_failed_record_then_the_next_batch() -> None:
    function = Scripted([failures("13", "12"), failures()])
    delivery = ShardDelivery(lambda: function, batch_size=5)
    records = [*BATCH, put(A, seq=20)]
    stats = delivery.deliver(records)
    assert function.calls == [["10", "11", "12", "13", "14"], ["12", "13", "14"], ["20"]]
    assert (stats.batches, stats.invocations, stats.retries, stats.partial_failures) == (2, 3, 1, 1)
    assert stats.records == 6 and stats.records_delivered == 9


def test_an_invocation_error_redelivers_the_whole_batch() -> None:
    function = Scripted([RuntimeError("boom"), failures("99")])
    stats = ShardDelivery(lambda: function, batch_size=5).deliver(BATCH)
    assert function.calls == [[r["dynamodb"]["SequenceNumber"] for r in BATCH]] * 3
    assert stats.whole_batch_failures == 2 and "boom" in stats.errors[0]


def test_a_retry_can_land_on_a_cold_container() -> None:
    functions: list[Scripted] = []

    def start() -> Scripted:
        functions.append(Scripted([failures("11")] if not functions else []))
        return functions[-1]

    stats = ShardDelivery(start, batch_size=5, cold_start_rate=1.0).deliver(BATCH)
    assert stats.cold_starts == 1 and len(functions) == 2
    assert functions[0].closed and functions[1].calls == [["11", "12", "13", "14"]]


def test_a_batch_that_never_succeeds_fails_the_run() -> None:
    function = Scripted([failures("10")] * 10)
    with pytest.raises(DidNotConverge, match="after 4 invocations"):
        ShardDelivery(lambda: function, batch_size=5, max_attempts=4).deliver(BATCH)
    assert len(function.calls) == 4
