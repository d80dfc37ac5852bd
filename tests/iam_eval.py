"""A small IAM policy evaluator for the templates' tests: which request does a set of statements allow?

Enough of AWS's rules for our policies (IAM user guide, "Policy evaluation logic"): an explicit Deny
wins, else some Allow must match, else the request is denied. ``Action`` and ``Resource`` match with
``*`` (any characters, ``/`` included) and ``?`` (one character), actions case-insensitively; the
condition operators our templates use are evaluated against the request's context keys, a missing key
failing the condition (its negated operators, ``...Not...``, and ``...IfExists`` then hold, as in AWS).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def _operator_holds(operator: str, expected: Any, actual: str | None) -> bool:
    if operator.endswith("IfExists"):
        return actual is None or _operator_holds(operator.removesuffix("IfExists"), expected, actual)
    negated = "Not" in operator
    if actual is None:
        return negated
    values = [str(value) for value in as_list(expected)]
    if operator in ("StringEquals", "ArnEquals", "Bool"):
        return actual in values
    if operator in ("StringNotEquals", "ArnNotEquals"):
        return actual not in values
    if operator in ("StringLike", "ArnLike"):
        return any(wildcard(value, actual) for value in values)
    if operator in ("StringNotLike", "ArnNotLike"):
        return not any(wildcard(value, actual) for value in values)
    if operator == "NumericLessThan":
        return any(float(actual) < float(value) for value in values)
    raise AssertionError(f"the evaluator does not know the condition operator {operator}")


def conditions_hold(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    return all(
        _operator_holds(operator, expected, context.get(key))
        for operator, keys in condition.items()
        for key, expected in keys.items()
    )


def matches(statement: Mapping[str, Any], request: Request) -> bool:
    assert "NotAction" not in statement and "NotResource" not in statement, "the evaluator knows Action/Resource"
    return (
        any(wildcard(action, request.action, ignore_case=True) for action in as_list(statement["Action"]))
        and any(wildcard(resource, request.resource) for resource in as_list(statement["Resource"]))
        and conditions_hold(statement.get("Condition", {}), request.context)
    )


def allowed(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """True when some statement allows the request and none denies it."""
    hits = [statement["Effect"] for statement in statements if matches(statement, request)]
    return "Deny" not in hits and "Allow" in hits


def denied(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """True when some statement explicitly denies the request (a resource policy's veto)."""
    return any(statement["Effect"] == "Deny" and matches(statement, request) for statement in statements)
