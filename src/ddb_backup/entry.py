"""The ``ddb-backup`` console script: light on purpose (nothing but the standard library before the CLI).

Importing the command line (``ddb_backup.cli``: click, boto3, the commands) takes a second or two; a
Ctrl-C meanwhile ends the process with exit 130 and the one line every command prints for it, not a
KeyboardInterrupt traceback from inside some import. Exit codes: ``ddb_backup.cli`` (the group's help).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

INTERRUPTED = 130  # as ddb_backup.cli.INTERRUPTED: shells report SIGINT as 128 + 2


def _interrupted_while_loading(signum: int, frame: FrameType | None) -> None:
    """Nothing has been touched yet: say so in one line and leave at once (no half-imported cleanup)."""
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(INTERRUPTED)


def main() -> None:
    previous = signal.signal(signal.SIGINT, _interrupted_while_loading)
    from ddb_backup.cli import main as cli_main

    signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)  # SIG_IGN stays
    cli_main()
