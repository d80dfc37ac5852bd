"""The Lambda handler's import graph stays light: no CLI (click, rich, ``ddb_backup.cli``) and nothing of
what exists to exercise the product (``ddb_backup.lab``, moto) is loaded at cold start
(docs/architecture.md, "Rules the code keeps")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("click", "rich", "ddb_backup.cli", "ddb_backup.lab", "moto")


def modules_after_importing(module: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter once ``module`` is imported."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    answer = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    return set(json.loads(answer.stdout))


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if any(name == f or name.startswith(f + ".") for f in FORBIDDEN))


def test_importing_the_lambda_handler_loads_no_cli_and_no_lab() -> None:
    # GIVEN a fresh interpreter, as a Lambda container's cold start
    # WHEN the handler module is imported (template.yaml's Handler: ddb_backup.handler.handler)
    modules = modules_after_importing("ddb_backup.handler")
    # THEN the capture code is there, and nothing of the CLI or the lab
    assert {"ddb_backup.handler", "ddb_backup.capture.engine", "ddb_backup.store.native"} <= modules
    assert forbidden_in(modules) == []


@pytest.mark.parametrize(
    ("module", "expected"), [("ddb_backup.cli", "click"), ("ddb_backup.lab.demo", "ddb_backup.lab")]
)
def test_the_check_sees_what_other_entry_points_load(module: str, expected: str) -> None:
    # GIVEN the command line's and the demo's modules, which do need them
    # WHEN each is imported in a fresh interpreter
    # THEN the same check names what the handler must not load
    assert expected in forbidden_in(modules_after_importing(module))
