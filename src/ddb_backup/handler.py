"""The Lambda entry point: ``ddb_backup.handler.handler``.

Thin on purpose: settings are read and checked once (the first invocation of a container), the
library's ``Capture`` does the work, and this module turns its report into Lambda's partial batch
response, structured logs and CloudWatch metrics (Powertools). Nothing from the CLI is imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import BatchReport, Capture, CaptureSettings
from ddb_backup.capture.key_schema_cache import KeySchemaCache
from ddb_backup.settings import Settings, require_versioning
from ddb_backup.store.native import open_s3_store

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ddb-backup"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DdbBackup"))
# The library's own loggers (ddb_backup.capture.engine, ...) log as structured JSON too.
copy_config_to_registered_loggers(source_logger=logger, include={"ddb_backup"})


class BadEvent(ValueError):
    """The invocation's event is not a DynamoDB Streams batch."""


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    capture: Capture


_runtime: Runtime | None = None


def build_runtime(settings: Settings, *, s3_client: Any = None, dynamodb_client: Any = None) -> Runtime:
    """Clients, the versioning check and the capture engine, made once per container."""
    owner = settings.expected_bucket_owner
    # native unless DDB_BACKUP_S3_CLIENT
    store = open_s3_store(s3_client or make_client("s3"), settings.bucket, expected_bucket_owner=owner)
    require_versioning(settings.bucket, store.versioning_enabled())
    schemas = KeySchemaCache(dynamodb_client or make_client("dynamodb"))
    capture_settings = CaptureSettings(
        prefix=settings.prefix, plain_text=settings.plain_text, tenant_column=settings.tenant_column
    )
    return Runtime(settings, Capture(store, capture_settings, schemas.lookup))


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(Settings.from_env())
        logger.info("backup function ready", extra={"settings": _runtime.settings.__dict__})
    return _runtime


def reset_runtime() -> None:
    """Forget the cached runtime (tests change the environment between invocations)."""
    global _runtime
    _runtime = None


def records_of(event: Any) -> list[Mapping[str, Any]]:
    if not isinstance(event, Mapping) or not isinstance(event.get("Records"), list):
        shape = type(event).__name__ if not isinstance(event, Mapping) else f"keys {sorted(event)[:5]}"
        raise BadEvent(
            f"the event is not a DynamoDB Streams batch ({{'Records': [...]}}), got {shape}: "
            "invoke this function only through a DynamoDB stream event source mapping"
        )
    return list(event["Records"])


@metrics.log_metrics
def handler(event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
    records = records_of(event)
    report = runtime().capture.process(records)
    _publish(report, len(records))
    return report.lambda_response()


def _publish(report: BatchReport, received: int) -> None:
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=received)
    metrics.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=report.written)
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(report.failures))
    metrics.add_metric(name="ReplaysSkipped", unit=MetricUnit.Count, value=report.replays_skipped)
    if report.missing_tenant:
        metrics.add_metric(name="MissingTenant", unit=MetricUnit.Count, value=report.missing_tenant)
    if report.lags:
        metrics.add_metric(name="WriteLagSeconds", unit=MetricUnit.Seconds, value=max(report.lags))
    summary = {
        "received": received,
        "written": report.written,
        "failed": len(report.failures),
        "replays_skipped": report.replays_skipped,
        "missing_tenant": report.missing_tenant,
        "max_lag_seconds": round(max(report.lags), 3) if report.lags else None,
    }
    if report.failures:
        logger.error(
            "batch had failures; Lambda retries from the lowest",
            extra={**summary, "failures": report.failures, "errors": report.errors[:20]},
        )
    else:
        logger.info("batch backed up", extra=summary)
