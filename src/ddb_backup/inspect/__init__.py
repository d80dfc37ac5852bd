"""Reading a backup to answer questions: one item's history, what changed between two times, whether
the live table and the backup agree, an export for DynamoDB's own import, and what a bucket holds."""
