"""A DynamoDB Streams client that can do what moto cannot: split and close shards, expire iterators,
trim records. It answers in boto3's shapes and raises botocore's ClientError with AWS's error codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-27T00:00:00.000"


def error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@dataclass
class FakeShard:
    shard_id: str
    parent: str | None
    first_sequence: int
    records: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    trimmed_before: int = 0  # index of the oldest record still readable

    def description(self) -> dict[str, Any]:
        numbers = {"StartingSequenceNumber": str(self.first_sequence)}
        if self.closed:
            numbers["EndingSequenceNumber"] = str(self.first_sequence + len(self.records) + 1000)
        shard: dict[str, Any] = {"ShardId": self.shard_id, "SequenceNumberRange": numbers}
        if self.parent:
            shard["ParentShardId"] = self.parent
        return shard


class FakeStreams:
    def __init__(self, page_size: int = 2) -> None:
        self.shards: dict[str, FakeShard] = {}
        self.listing_order: list[str] | None = None
        self.page_size = page_size
        self.expire_next = 0  # this many GetRecords calls answer ExpiredIteratorException
        self.calls: list[tuple[str, dict[str, Any]]] = []

    # -- building the stream --------------------------------------------------------------------

    def add_shard(self, shard_id: str, parent: str | None = None, first_sequence: int = 100) -> FakeShard:
        self.shards[shard_id] = FakeShard(shard_id, parent, first_sequence)
        return self.shards[shard_id]

    def write(self, shard_id: str, pk: str, value: int = 0) -> str:
        shard = self.shards[shard_id]
        sequence = str(shard.first_sequence + len(shard.records))
        keys = {"pk": {"S": pk}}
        shard.records.append(
            {
                "eventID": f"{shard_id}-{sequence}",
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": datetime(2026, 11, 27, tzinfo=UTC),
                    "Keys": keys,
                    "NewImage": {**keys, "v": {"N": str(value)}},
                    "OldImage": keys,
                    "SequenceNumber": sequence,
                    "SizeBytes": 20,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        )
        return sequence

    def split(self, parent: str, *children: str, first_sequence: int) -> None:
        self.shards[parent].closed = True
        for offset, child in enumerate(children):
            self.add_shard(child, parent, first_sequence + 1000 * offset)

    # -- the API --------------------------------------------------------------------------------

    def describe_stream(self, **args: Any) -> dict[str, Any]:
        self.calls.append(("DescribeStream", args))
        order = self.listing_order or list(self.shards)
        order = [shard_id for shard_id in order if shard_id in self.shards]
        start = order.index(args["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in args else 0
        page = order[start : start + self.page_size]
        description: dict[str, Any] = {
            "StreamArn": args["StreamArn"],
            "StreamStatus": "ENABLED",
            "Shards": [self.shards[shard_id].description() for shard_id in page],
        }
        if start + self.page_size < len(order):
            description["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": description}

    def get_shard_iterator(self, **args: Any) -> dict[str, Any]:
        self.calls.append(("GetShardIterator", args))
        shard = self.shards[args["ShardId"]]
        kind = args["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            index = shard.trimmed_before
        elif kind == "LATEST":
            index = len(shard.records)
        else:
            index = int(args["SequenceNumber"]) - shard.first_sequence + (1 if kind == "AFTER_SEQUENCE_NUMBER" else 0)
            if index < shard.trimmed_before:
                raise error("TrimmedDataAccessException", "GetShardIterator")
        return {"ShardIterator": f"{shard.shard_id}|{index}"}

    def get_records(self, **args: Any) -> dict[str, Any]:
        self.calls.append(("GetRecords", args))
        if self.expire_next:
            self.expire_next -= 1
            raise error("ExpiredIteratorException", "GetRecords")
        shard_id, index_text = args["ShardIterator"].split("|")
        shard, index = self.shards[shard_id], int(index_text)
        if index < shard.trimmed_before:
            raise error("TrimmedDataAccessException", "GetRecords")
        records = shard.records[index : index + args.get("Limit", 1000)]
        end = index + len(records)
        answer: dict[str, Any] = {"Records": [dict(record) for record in records]}
        if not (shard.closed and end >= len(shard.records)):
            answer["NextShardIterator"] = f"{shard_id}|{end}"
        return answer
