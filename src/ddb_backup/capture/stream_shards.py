"""A DynamoDB Stream's shards and their lineage, for the stream runner.

Shards come from DescribeStream (paginated with ``ExclusiveStartShardId``). A shard is read only
after its parent has been read to its end (or is gone from the stream), as Lambda does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.errors import UserError


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None = None
    starting_sequence: str | None = None
    ending_sequence: str | None = None  # set once the shard is closed

    @classmethod
    def from_description(cls, shard: Mapping[str, Any]) -> Shard:
        numbers = shard.get("SequenceNumberRange", {})
        return cls(
            shard["ShardId"],
            shard.get("ParentShardId"),
            numbers.get("StartingSequenceNumber"),
            numbers.get("EndingSequenceNumber"),
        )


@dataclass
class Gap:
    """Records lost before they were read: sequence numbers after ``after`` and before ``before``
    (``None``: from the shard's start / to its end)."""

    shard_id: str
    after: str | None
    before: str | None
    reason: str

    def describe(self) -> str:
        start = f"after {self.after}" if self.after else "from its start"
        end = f"before {self.before}" if self.before else "to its end"
        return f"shard {self.shard_id}: records {start} {end} were lost ({self.reason})"


@dataclass
class ShardState:
    shard: Shard
    iterator: str | None = None
    failures: int = 0
    last_error: str = ""
    pending_gap: Gap | None = None


def list_shards(streams: Any, stream_arn: str) -> list[Shard]:
    """Every shard of the stream, following DescribeStream's pages."""
    shards: list[Shard] = []
    args: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = streams.describe_stream(**args)["StreamDescription"]
        shards += [Shard.from_description(shard) for shard in description.get("Shards", [])]
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        args["ExclusiveStartShardId"] = last


def region_of(stream_arn: str) -> str:
    return stream_arn.split(":")[3]


class ShardLineage:
    """The shards DescribeStream lists now, each with its reading state, and which of them may be read."""

    def __init__(self, streams: Any, stream_arn: str) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.states: dict[str, ShardState] = {}

    def refresh(self) -> dict[str, Shard]:
        """List the shards again: new ones are added, gone ones dropped; answers the listed shards."""
        shards = {shard.shard_id: shard for shard in list_shards(self.streams, self.stream_arn)}
        for shard_id, shard in shards.items():
            state = self.states.get(shard_id)
            if state is None:
                self.states[shard_id] = ShardState(shard)
            else:
                state.shard = shard
        for shard_id in [shard_id for shard_id in self.states if shard_id not in shards]:
            del self.states[shard_id]
        return shards

    def ready(self, finished: set[str]) -> list[ShardState]:
        """Shards not finished whose parent is finished or gone from the stream, oldest first."""
        known = self.states
        return [
            state
            for shard_id, state in sorted(known.items(), key=lambda item: int(item[1].shard.starting_sequence or 0))
            if shard_id not in finished
            and (
                state.shard.parent_id is None or state.shard.parent_id not in known or state.shard.parent_id in finished
            )
        ]


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def stream_arn_for(dynamodb: Any, table: str, *, needs_old_image: bool = False) -> str:
    """The table's current stream, checked for the images capture needs."""
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            raise UserError(
                f"table {table!r} does not exist in this region", hint="check --table and --region"
            ) from err
        raise
    spec = description.get("StreamSpecification") or {}
    arn = description.get("LatestStreamArn")
    enable = (
        f"aws dynamodb update-table --table-name {table} "
        "--stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES"
    )
    if not spec.get("StreamEnabled") or not arn:
        raise UserError(f"table {table!r} has no DynamoDB stream", hint=enable)
    view = spec.get("StreamViewType")
    wanted = ("NEW_AND_OLD_IMAGES",) if needs_old_image else ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    if view not in wanted:
        raise UserError(
            f"table {table!r} has a {view} stream, which lacks the images a backup needs",
            hint="disable the stream, then " + enable,
        )
    return str(arn)
