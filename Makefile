# ddb-backup: `make demo` runs capture on the embedded emulator, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench soak clean package template-lint cfn-lint checkov

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ddb-backup demo

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Hypothesis: derandomised and without an example database in `make test` (tests/hypothesis_profiles.py).
unit: $(STAMP)
	DDB_BACKUP_HYPOTHESIS_PROFILE=test $(BIN)/pytest -n 2 -p no:cacheprovider

test: lint typecheck template-lint unit

# 50,000 records through capture under 10% injected S3 faults; prints memory per window.
# Then the property tests, random and ten times longer than in `make test`.
soak: $(STAMP)
	$(BIN)/python -m ddb_backup.lab.soak --records 50000
	$(BIN)/python -m ddb_backup.lab.simulation --seeds 600 --first-seed 1000
	DDB_BACKUP_HYPOTHESIS_PROFILE=soak $(BIN)/pytest -n 2 -p no:cacheprovider -q \
		tests/test_restore_property.py tests/test_store_retry.py tests/test_inspect_export.py tests/test_keys.py \
		tests/test_cli_fuzz.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

# Deploy (issue 6): the function's zip for template.yaml, and the linters of both templates (the
# source account's template.yaml, the backup account's backup-account.yaml).
# checkov pins old boto3/networkx/packaging, so it lives in a venv of its own; --skip-download keeps
# it offline (no guideline or policy download).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

package: $(STAMP)
	$(BIN)/python scripts/package_lambda.py --out dist/ddb-backup-lambda.zip --bytecode --arch arm64
	$(BIN)/python scripts/package_lambda.py --out dist/ddb-backup-lambda-x86_64.zip --bytecode --arch x86_64

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

TEMPLATES := template.yaml backup-account.yaml

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint $(TEMPLATES)

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov --skip-download --quiet --compact --framework cloudformation $(addprefix --file ,$(TEMPLATES))

template-lint: cfn-lint checkov
