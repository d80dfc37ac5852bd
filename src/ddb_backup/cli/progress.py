"""Progress for long commands: a rich bar on a terminal, a plain line every few seconds otherwise.

The library reports progress through a callback and never imports rich; commands wrap it here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import click

PLAIN_EVERY_SECONDS = 5.0

# update(done, total, detail): total None (or 0) when unknown; detail starts with the unit of done, and
# labels every other count it holds ("items put, 3 looked at"): the plain line reads "label: 5 of 50 items ..."
Update = Callable[[int, int | None, str], None]


@contextmanager
def progress(label: str, *, out: TextIO | None = None, force_plain: bool = False) -> Iterator[Update]:
    """Yield an ``update`` callback that shows ``label``'s progress on ``out`` (default stderr)."""
    out = out or sys.stderr
    if not force_plain and out.isatty():
        with _rich_bar(label, out) as update:
            yield update
    else:
        with _plain_lines(label, out) as update:
            yield update


@contextmanager
def _rich_bar(label: str, out: TextIO) -> Iterator[Update]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[detail]}"), console=Console(file=out)) as bar:
        task = bar.add_task(label, total=None, detail="")

        def update(done: int, total: int | None, detail: str = "") -> None:
            bar.update(task, completed=done, total=max(total, done) if total else None, detail=detail)

        yield update


@contextmanager
def _plain_lines(label: str, out: TextIO) -> Iterator[Update]:
    shown_at: float | None = None
    pending = ""

    def update(done: int, total: int | None, detail: str = "") -> None:
        nonlocal shown_at, pending
        pending = f"{label}: {done}" + (f" of {total}" if total else "") + (f" {detail}" if detail else "")
        now = time.monotonic()
        if shown_at is None or now - shown_at >= PLAIN_EVERY_SECONDS:
            click.echo(pending, file=out)
            shown_at, pending = now, ""

    try:
        yield update
    finally:  # the final state, when it was not the last line shown (also when the command failed)
        if pending:
            click.echo(pending, file=out)
