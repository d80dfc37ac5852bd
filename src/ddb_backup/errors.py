"""Errors meant for the user: one clear line and a hint ("Try: ...")."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the CLI prints it as one line with the hint, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (Try: {self.hint})" if self.hint else text


class BackupError(Exception):
    """AWS or storage failed in a way retries did not cure; exit code 3."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (Try: {self.hint})" if self.hint else text
