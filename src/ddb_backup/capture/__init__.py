"""Writing the backup: stream records, the capture engine (Lambda and the stream runner), full backup,
the stream runner and its checkpoint."""
