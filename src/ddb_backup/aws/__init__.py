"""Talking to AWS: boto3 clients configured one way, a fast parser for the timestamps they answer,
capacity pacing (token bucket) and one segment of a consistent parallel Scan."""
