"""The function's zip, built by the code ``make package`` runs, works on the Lambda runtime alone.

A fresh venv holds only boto3 and botocore (what the Python Lambda runtime provides, at our pinned
versions); the zip is unzipped beside it, as Lambda does into /var/task, and the handler is imported
and invoked there in a subprocess, against moto's server, with nothing from the dev venv on the path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ddb_backup.aws.clients import make_client
from ddb_backup.lab.demo import create_bucket, create_table, read_stream
from ddb_backup.store.s3 import S3Store

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = {"click", "rich", "moto", "zstandard", "boto3", "botocore", "hypothesis", "pytest"}


def load_packager() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package_lambda", ROOT / "scripts" / "package_lambda.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def packager() -> ModuleType:
    return load_packager()


HOST_ARCH = {"aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "x86_64")


@pytest.fixture(scope="module")
def built_zip(packager: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The zip for this machine's architecture, so its native client loads here as it would on Lambda."""
    return packager.build_zip(tmp_path_factory.mktemp("dist") / "ddb-backup-lambda.zip", arch=HOST_ARCH)


@pytest.fixture(scope="module")
def lambda_python(packager: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with only the Lambda runtime's packages: boto3 and botocore at our pinned versions."""
    home = tmp_path_factory.mktemp("lambda-runtime")
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    purelib = subprocess.run(
        [python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    runtime = [packager.pinned("boto3"), f"botocore=={metadata.version('botocore')}"]
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--target", purelib, *runtime], check=True)
    return python


def top_level_names(archive: Path) -> set[str]:
    with zipfile.ZipFile(archive) as zipped:
        return {name.split("/")[0].split("-")[0].removesuffix(".py") for name in zipped.namelist()}


def test_the_zip_carries_the_package_and_powertools_but_not_the_cli_or_the_runtime(built_zip: Any) -> None:
    # GIVEN the zip built the way `make package` builds it
    # WHEN its top-level names are read
    names = top_level_names(built_zip.path)
    # THEN it has the handler's package, Powertools and the native S3 client (awscrt, one library) and
    # nothing else heavy
    assert {"ddb_backup", "aws_lambda_powertools", "awscrt"} <= names
    assert not names & NOT_SHIPPED
    assert [name.split("/")[-1].split(".")[0] for name in built_zip.native_files] == ["_awscrt"]
    with zipfile.ZipFile(built_zip.path) as zipped:
        assert "ddb_backup/handler.py" in zipped.namelist()
        # nor the command line or the exercise package (they need click, rich and moto)
        assert not [n for n in zipped.namelist() if n.startswith(("ddb_backup/cli/", "ddb_backup/lab/"))]
        assert "ddb_backup/entry.py" not in zipped.namelist() and "ddb_backup/restore/execute.py" in zipped.namelist()


ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}  # e_machine: EM_AARCH64, EM_X86_64


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_each_architecture_gets_its_own_native_client(packager: ModuleType, arch: str, tmp_path: Path) -> None:
    # GIVEN the zip built for one of Lambda's two architectures
    summary = packager.build_zip(tmp_path / f"{arch}.zip", arch=arch)
    # WHEN its one native library is read
    with zipfile.ZipFile(summary.path) as zipped:
        (library,) = summary.native_files
        header = zipped.read(library)[:20]
    # THEN it is an ELF library built for that architecture
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch]


def test_the_zip_is_reproducible(packager: ModuleType, tmp_path: Path) -> None:
    # GIVEN a staging tree whose files get new modification times between two builds
    staging = tmp_path / "staging"
    (staging / "pkg").mkdir(parents=True)
    (staging / "pkg" / "a.py").write_text("A = 1\n")
    (staging / "top.py").write_text("B = 2\n")
    first = packager.write_zip(staging, tmp_path / "one.zip")
    os.utime(staging / "top.py", (1_900_000_000, 1_900_000_000))
    # WHEN it is zipped again
    second = packager.write_zip(staging, tmp_path / "two.zip")
    # THEN the bytes are the same, so an unchanged build uploads nothing new
    assert first.files == second.files == 2
    assert first.path.read_bytes() == second.path.read_bytes()


RUN_HANDLER = """
import json, sys
task = sys.argv[1]
sys.path.insert(0, task)
import aws_lambda_powertools, awscrt, boto3
import ddb_backup.handler as h
event = json.loads(sys.stdin.read())
response = h.handler(event, None)
shipped = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))
files = {"handler": h.__file__, "powertools": aws_lambda_powertools.__file__, "boto3": boto3.__file__,
         "awscrt": awscrt.__file__, "store": type(h.runtime().capture.store).__name__}
print(json.dumps({"response": response, "unexpected_modules": shipped, "files": files}))
"""


def test_the_packaged_handler_backs_up_a_batch_on_the_lambda_runtime_alone(
    built_zip: Any, lambda_python: Path, moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the zip unzipped as Lambda does, and a table's stream records and a versioned bucket on moto
    task = tmp_path / "task"
    with zipfile.ZipFile(built_zip.path) as zipped:
        zipped.extractall(task)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    stream_arn = create_table(ddb, "orders")
    create_bucket(s3, "bk-package")
    ddb.put_item(TableName="orders", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "one"}})
    ddb.put_item(TableName="orders", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "two"}})
    records = read_stream(streams, stream_arn, os.environ["AWS_DEFAULT_REGION"])
    env = {
        "PATH": os.environ.get("PATH", ""),
        **{name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")},
        "AWS_ENDPOINT_URL": moto_url,
        "BackupBucket": "bk-package",
        "BackupPrefix": "backups",
        "PlainTextKeyAsFilename": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "DdbBackup",
    }
    # WHEN the handler is imported from the unzipped zip and invoked in the runtime-only venv
    done = subprocess.run(
        [lambda_python, "-I", "-c", RUN_HANDLER, str(task), ",".join(sorted(NOT_SHIPPED - {"boto3", "botocore"}))],
        input=json.dumps({"Records": records}),
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # THEN it answers with no failures, loaded nothing the zip lacks, and the changes are in the bucket
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["response"] == {"batchItemFailures": []}
    assert result["unexpected_modules"] == []
    assert result["files"]["handler"].startswith(str(task))
    assert result["files"]["powertools"].startswith(str(task))
    assert result["files"]["awscrt"].startswith(str(task))
    assert result["files"]["store"] == "NativeS3Store"
    assert result["files"]["boto3"].startswith(str(lambda_python.parent.parent))
    versions = list(S3Store(s3, "bk-package").list_versions("backups/"))
    assert [row.key for row in versions] == ["backups/orders/a | 1", "backups/orders/a | 1"]


def test_bytecode_for_the_runtime_is_compiled_reproducibly(packager: ModuleType, tmp_path: Path) -> None:
    # GIVEN this machine's Python of the Lambda runtime's version (the CI machine has one too)
    python = packager.find_lambda_python()
    assert python is not None, f"no Python {packager.LAMBDA_PYTHON} found: `make package` would ship sources only"
    staging = tmp_path / "staging"
    (staging / "pkg").mkdir(parents=True)
    (staging / "pkg" / "a.py").write_text("A = 1\n")
    # WHEN bytecode is compiled twice, from two different build folders
    packager.compile_bytecode(staging, python)
    first = packager.write_zip(staging, tmp_path / "one.zip", bytecode=True)
    moved = tmp_path / "elsewhere"
    staging.rename(moved)
    for stale in moved.rglob("*.pyc"):
        stale.unlink()
    packager.compile_bytecode(moved, python)
    second = packager.write_zip(moved, tmp_path / "two.zip", bytecode=True)
    # THEN the zip holds the runtime's bytecode, named as Lambda sees it, and the same bytes both times
    with zipfile.ZipFile(first.path) as zipped:
        assert f"pkg/__pycache__/a.cpython-{packager.LAMBDA_PYTHON.replace('.', '')}.pyc" in zipped.namelist()
        assert b"/var/task/pkg/a.py" in zipped.read("pkg/__pycache__/a.cpython-312.pyc")
    assert first.path.read_bytes() == second.path.read_bytes()
