"""Build the Lambda function's zip: the ``ddb_backup`` package plus what the Lambda runtime lacks.

The Python 3.12 Lambda runtime already has boto3 and botocore, so the zip carries only
``aws-lambda-powertools`` and ``awscrt`` (the native S3 client, ``ddb_backup.store.native``) at the
versions pinned in pyproject.toml, resolved for the function's architecture (``--arch``: arm64, the
template's, as ``manylinux2014_aarch64``, or x86_64) and binary wheels only, so nothing is compiled
for this machine by mistake, and the package's own sources. awscrt's wheel holds one native library
for one architecture, so each architecture has its own zip (``make package`` builds both). click,
rich, zstandard and moto stay out: the handler's import path does not use them; so do the command line
(``ddb_backup/cli``, ``entry.py``) and the exercise package (``ddb_backup/lab``), which need them.

The zip is reproducible: sorted entries, fixed timestamps and modes, so an unchanged build gives
the same bytes and ``sam deploy`` sees nothing to upload.

With ``--bytecode-python PATH`` (a Python 3.12, the runtime's), the zip also carries bytecode compiled
with hash-based invalidation: Lambda's file system is read-only, so without it every cold start
compiles the package and Powertools from source.

Measured with Python 3.12 here: importing the handler after boto3 took 150 ms of CPU from sources and
42 ms with bytecode (boto3 itself: about 300 ms).

Usage: python scripts/package_lambda.py [--out dist/ddb-backup-lambda.zip] [--bytecode | --bytecode-python PY]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "dist" / "ddb-backup-lambda.zip"
PACKAGE = "ddb_backup"
# What the function needs at run time beyond the Lambda runtime (boto3 and botocore are in it).
ZIP_REQUIREMENTS = ("aws-lambda-powertools", "awscrt")
LAMBDA_PYTHON = "3.12"
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
DEFAULT_ARCH = "arm64"  # template.yaml's Architectures
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: the file names bytecode records
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED_PARTS = {"__pycache__", "bin"}
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")


@dataclass(frozen=True)
class ZipSummary:
    path: Path
    files: int
    size: int
    native_files: tuple[str, ...]


def pinned(requirement: str, pyproject: Path = ROOT / "pyproject.toml") -> str:
    """``name==version`` exactly as pinned in pyproject.toml's runtime dependencies."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    for line in dependencies:
        name = re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0]
        if name.lower() == requirement.lower():
            return str(line)
    raise SystemExit(f"{requirement} is not a runtime dependency in {pyproject}: add it with an exact pin")


def install_requirements(target: Path, requirements: list[str], arch: str = DEFAULT_ARCH) -> None:
    """pip install for Lambda's Python on ``arch`` into ``target`` (wheels only; pip's cache is reused)."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--target", str(target), "--platform", PLATFORMS[arch], "--implementation", "cp",
        "--python-version", LAMBDA_PYTHON, "--only-binary=:all:", *requirements,
    ]  # fmt: skip
    subprocess.run(command, check=True)


NOT_IN_ZIP = {"cli", "lab", "entry.py"}  # the command line and the exercise package: never imported by the handler


def copy_package(source: Path, target: Path) -> None:
    """The package's sources without the command line and the exercise package: they need click, rich
    and moto, which the zip does not carry, and the handler never imports them (tests/test_handler_imports.py)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")

    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder) == source
        return set(skip(folder, names)) | ({name for name in names if name in NOT_IN_ZIP} if at_root else set())

    shutil.copytree(source, target / source.name, ignore=ignore)


def find_lambda_python() -> str | None:
    """A Python of the Lambda runtime's version on this machine: ``python3.12`` on PATH, or pyenv's."""
    candidates = [shutil.which(f"python{LAMBDA_PYTHON}") or ""]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{LAMBDA_PYTHON}*/bin/python"))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(map(int, LAMBDA_PYTHON.split(".")))).encode():
            return candidate
    return None


def compile_bytecode(staging: Path, python: str) -> None:
    """``__pycache__/*.cpython-312.pyc`` beside every source, checked by hash and naming files as they lie
    in Lambda (no timestamps, no build folder: the same sources give the same bytes)."""
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], check=True, capture_output=True, text=True
    ).stdout.strip()
    if version != LAMBDA_PYTHON:
        raise SystemExit(f"--bytecode-python {python} is Python {version}; the Lambda runtime is {LAMBDA_PYTHON}")
    command = [
        python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
        "-s", str(staging), "-p", LAMBDA_TASK_ROOT, str(staging),
    ]  # fmt: skip
    subprocess.run(command, check=True)


def files_under(root: Path, *, bytecode: bool = False) -> Iterator[Path]:
    skipped = SKIPPED_PARTS - {"__pycache__"} if bytecode else SKIPPED_PARTS
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or skipped.intersection(relative.parts):
            continue
        if path.suffix != ".pyc" or (bytecode and f"cpython-{LAMBDA_PYTHON.replace('.', '')}" in path.name):
            yield relative


def write_zip(staging: Path, out: Path, *, bytecode: bool = False) -> ZipSummary:
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [path.as_posix() for path in files_under(staging, bytecode=bytecode)]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (staging / name).read_bytes())
    native = tuple(name for name in names if name.endswith(NATIVE_SUFFIXES))
    return ZipSummary(out, len(names), out.stat().st_size, native)


def build_zip(
    out: Path = DEFAULT_OUT,
    *,
    source: Path = ROOT / "src" / PACKAGE,
    bytecode_python: str | None = None,
    arch: str = DEFAULT_ARCH,
) -> ZipSummary:
    """Build the function's zip for ``arch`` (arm64 or x86_64) at ``out`` and say what it holds."""
    with tempfile.TemporaryDirectory(prefix="ddb-backup-lambda-") as tmp:
        staging = Path(tmp)
        install_requirements(staging, [pinned(name) for name in ZIP_REQUIREMENTS], arch)
        copy_package(source, staging)
        if bytecode_python:
            compile_bytecode(staging, bytecode_python)
        return write_zip(staging, out, bytecode=bool(bytecode_python))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"zip to write (default {DEFAULT_OUT})")
    parser.add_argument(
        "--bytecode-python", metavar="PYTHON", help=f"a Python {LAMBDA_PYTHON} to compile bytecode for the zip with"
    )
    parser.add_argument("--bytecode", action="store_true", help=f"find a Python {LAMBDA_PYTHON} to do that")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default=DEFAULT_ARCH, help="the function's architecture")
    args = parser.parse_args(argv)
    python = args.bytecode_python or (find_lambda_python() if args.bytecode else None)
    if args.bytecode and python is None:
        print(f"no Python {LAMBDA_PYTHON} found: the zip carries sources only (slower cold starts)", file=sys.stderr)
    summary = build_zip(args.out.resolve(), bytecode_python=python, arch=args.arch)
    native = len(summary.native_files)
    print(f"{summary.path}: {summary.files} files, {summary.size / 1e6:.2f} MB, native files: {native}")
    if summary.native_files:
        print(f"native files (built for {args.arch}):", *summary.native_files, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
