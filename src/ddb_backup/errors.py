"""Errors meant for the user: one clear line and a hint ("Try: ..."); the class sets the exit code."""

from __future__ import annotations


class HintedError(Exception):
    """An error with an optional hint, printed as ``message (Try: hint)``."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (Try: {self.hint})" if self.hint else text


class UserError(HintedError):
    """Something the user can fix; the CLI prints it as one line with the hint, exit code 2."""

    exit_code = 2


class BackupError(HintedError):
    """AWS or storage failed in a way retries did not cure; exit code 3."""

    exit_code = 3
