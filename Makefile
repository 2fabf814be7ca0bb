# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-lowest lint venv clean proto catalog

venv: $(STAMP)

# torch goes in first, pinned, so the package's torch range is already satisfied by the local CPU build and
# pip never pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[test,ray]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/advisor-cli recommend client_examples/data/churn.csv --target churned

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(LOWEST)

# Regenerate lossadvisor/v1/*_pb2*.py from protos/ (tests fail when the committed code and the .proto disagree).
# protos/google/ holds googleapis' files advisor.proto imports (google/api/field_behavior.proto,
# google/longrunning/operations.proto and the files that one imports), copied unchanged from
# googleapis-common-protos, so that every client compiling from protos/ alone finds them; at run time the
# generated code imports googleapis-common-protos' modules (google.api, google.longrunning).
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. \
		protos/lossadvisor/v1/advisor.proto

# Regenerate advisor/losses/catalog.json, the stored catalog `advisor-cli losses` reads without importing torch
# (tests fail when it and the registry disagree).
catalog: $(STAMP)
	$(BIN)/python -m advisor._catalog_json

# The dependency floors: a second venv with every dependency at the lower bound pyproject.toml states (torch
# excepted: the local CPU build above), and a short subset of the tests that touches each of them: pydantic
# (specs, rules), pandas, numpy, scikit-learn and scipy (profiling), pillow (segmentation images), torch
# (trials), typer and rich (CLI), matplotlib (report), grpcio, protobuf and googleapis-common-protos (service),
# grpcio-tools (generated code), optuna (integrations). About 1 minute of tests; the first build of the venv
# takes a few minutes more.
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
LOWEST_TESTS := tests/test_packaging.py tests/test_cache.py tests/test_spec.py tests/test_rules_engine.py tests/test_profile.py \
	tests/test_segmentation_data.py \
	tests/test_recommend.py tests/test_report.py tests/test_service.py::test_list_losses_and_validate_spec \
	tests/test_service.py::test_recommend_rules_only_and_with_trials \
	tests/test_service.py::test_recommend_on_csv_and_arrow_datasets \
	tests/test_service.py::test_invalid_requests_fail_with_field_violations \
	tests/test_service.py::test_python_client_round_trips_a_recommendation \
	tests/test_service.py::test_generated_code_matches_the_proto \
	tests/test_examples.py::test_optuna_study_chooses_among_the_top_specs

$(LOWEST_STAMP): pyproject.toml .ci/lowest_constraints.py
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(LOWEST)/bin/python .ci/lowest_constraints.py test > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet --constraint $(LOWEST)/constraints.txt -e ".[test]"
	touch $(LOWEST_STAMP)

test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -m pytest -q $(LOWEST_TESTS) \
		--deselect "tests/test_packaging.py::test_wheel_ships_rules_proto_catalog_and_py_typed_and_a_target_install_loads_the_rules"
