"""ddb-backup: continuous DynamoDB backups into a versioned S3 bucket, exact point-in-time restore."""

__version__ = "0.1.0"
