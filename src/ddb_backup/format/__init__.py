"""The bucket format (docs/format.md): object names and keys, a version's metadata, the saved table
schema, and every name a writer (ours, format 1, the original tool) gives an item."""
