# dunscan: every entry point a developer or CI needs. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
HOST   ?= 127.0.0.1
PORT   ?= 8000
export DUNSCAN_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install bytecode run test test-spark lint eval eval-compare train bench bench-http clean

# The venv is rebuilt only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# An editable install compiles nothing, and with PYTHONDONTWRITEBYTECODE set (many CI images and
# containers) Python would recompile the package on every start: a `dunscan check` process paid
# about 80 ms for it. compileall writes the .pyc a wheel install would (only stale files).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q service model

# The test suite also runs the Spark scorer (tests/test_spark.py): the `spark` extra (pyspark,
# pandas, pyarrow; about 2 min and 450 MB on a fresh venv) goes in beside the dev one.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $(SPARK_STAMP)

# `dunscan serve`: checks every setting, says where it listens, then runs gunicorn with
# service/gunicorn_conf.py (HOST and PORT come from the environment or the make line).
run: bytecode
	$(BIN)/dunscan serve --host $(HOST) --port $(PORT)

# The suite runs on every core (pytest-xdist, at most 4 processes), each test file whole in one
# process: module fixtures (a fitted model, a PostgreSQL server) are built once per file. The
# schemathesis file runs after, on its own: its generated tests share one node id, which xdist
# cannot hand out, and its last test counts the cases the others ran in the same process.
test: $(SPARK_STAMP) bytecode
	$(BIN)/ruff check service model tests
	$(BIN)/ruff format --check service model tests
	$(BIN)/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadfile \
		--ignore tests/test_schemathesis.py
	$(BIN)/python -m pytest tests/test_schemathesis.py

# The Spark batch scorer on local[2] against `dunscan score` alone (needs a Java runtime).
test-spark: $(SPARK_STAMP)
	$(BIN)/python -m pytest tests/test_spark.py -q

lint: $(STAMP)
	$(BIN)/ruff check service model tests
	$(BIN)/ruff format --check service model tests
	$(BIN)/lint-imports --no-cache

train: $(STAMP)
	$(BIN)/python -m model.train

# The headline is measured on real messages, grouped by source (model/reports/real.md); the
# synthetic corpus and the project-written challenge sets are regression checks beside it.
eval: $(STAMP)
	$(BIN)/python -m model.real_eval
	$(BIN)/python -m model.evaluate
	$(BIN)/python -m model.challenge | tee model/reports/challenge.md

# Candidates, and what each training source adds, on the same grouped folds (about three hours
# on 2 cores since the shipped candidate reads the sentence embedding; the two runs are
# independent). --repeats 3 cross-validates the shipped char_latin_use_lr on two more fold
# assignments, so the report says how far fold noise alone moves the figures being compared.
eval-compare: $(STAMP)
	$(BIN)/python -m model.real_eval --candidates char_latin_use_lr,char_latin_lr,char_lr,char_word_lr,char_svm --repeats 3 \
		--out model/reports/real_candidates.md
	$(BIN)/python -m model.real_eval --ablation --out model/reports/real_ablation.md

# dunscan against the bare char TF-IDF + LogisticRegression anchor on the same messages: single
# check, batch (in-process and `dunscan score --jobs 1/2`), load time, memory, a `dunscan check`.
bench: bytecode
	$(BIN)/python -m model.bench

# The real gunicorn on a loopback port at concurrency 1, 4 and 16 (bounded in requests and time).
bench-http: bytecode
	$(BIN)/python -m model.bench_http

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
