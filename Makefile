# The front door. `make install` sets up .venv; `make test` runs the unit tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 3
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS ?= 0

.PHONY: install install-bench test bench bench-train bench-ant data ant-expert ant-expert-eval pretrain reproduce clean

ENV ?= grid
PRESET ?= small
WORKDIR ?= runs/$(ENV)-$(PRESET)

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'

install-bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'

# two workers, whole test files each (module fixtures built once), the slowest first
# (tests/conftest.py): compiles overlap
test:
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

bench: install-bench
	$(PY) benchmarks/env_throughput.py

bench-train:
	$(PY) benchmarks/train_speed.py

bench-ant:
	$(PY) benchmarks/ant_throughput.py --devices 1
	$(PY) benchmarks/ant_throughput.py --devices 2

data:
	$(PY) experiments/expert_data.py --workdir runs/expert-data

# the ant expert: trains (EXPERT_PRESET cpu|gpu) and exports over the shipped one; -eval judges the shipped one
EXPERT_PRESET ?= cpu
ant-expert:
	$(PY) experiments/train_ant_expert.py --preset=$(EXPERT_PRESET) --workdir=runs/ant-expert-$(EXPERT_PRESET) --export=checkpoints/ant-expert

ant-expert-eval:
	$(PY) experiments/train_ant_expert.py --evaluate=checkpoints/ant-expert --workdir=runs/ant-expert-eval

pretrain:
	$(PY) experiments/pretrain.py --config=experiments/configs/$(ENV).py:$(PRESET) --workdir=$(WORKDIR)/pretrain

reproduce:
	$(PY) experiments/reproduce.py --env=$(ENV) --preset=$(PRESET) --workdir=$(WORKDIR)

clean:
	rm -rf $(VENV) .pytest_cache .jax_cache
