"""Output shared by the inspecting commands: ``--json`` for scripts, aligned plain text for people."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(command: F) -> F:
    """``--json``: the command receives ``as_json: bool``."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of text.")(command)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns padded to their widest cell; the last column is left ragged."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def short_key(key: dict[str, Any] | None, fallback: str) -> str:
    """``pk=a, sk=1`` for a typed key, else ``fallback`` (the object key)."""
    if not key:
        return fallback
    return ", ".join(f"{name}={next(iter(value.values()))}" for name, value in sorted(key.items()))


def changes_text(added: Sequence[str], removed: Sequence[str], changed: Sequence[str]) -> str:
    """``+new -gone ~changed`` attribute names."""
    return " ".join([*(f"+{n}" for n in added), *(f"-{n}" for n in removed), *(f"~{n}" for n in changed)])
