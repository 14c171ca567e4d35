# mdx: the two set-up commands are `make demo` and `make test` (both install first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.jax_cache
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=true
# Test files run in parallel processes (pytest-xdist): most of the suite is XLA compiling, which
# is single-threaded, so two workers on 2 cores take 9 min instead of 13 (measured 2026-12-01).
TEST_WORKERS ?= 2

.PHONY: install demo test benchmark clean

# The demo needs the core install only; the tests add the test extra (pytest, Minari, wandb).
$(VENV)/.core: setup.cfg setup.py constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed: $(VENV)/.core
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.core
	$(PY) experiments/pipeline.py --config=configs/point_robot.py:demo --workdir=runs/demo

# The tests' programs are tiny, so XLA's compile time is most of the suite: LLVM optimization
# level 0 compiles them about a third faster (user time 136 s -> 92 s for tests/test_sweep.py
# from an empty cache, 2026-12-01) with the same results (the golden and equality tests pass);
# XLA's older elemental fusion emitters and LLVM without its expensive passes another fifth
# (collect + MetaDiffuser's and Prompt-DT's stages of the test preset from an empty cache:
# 47.0 s -> 37.5 s, 2026-12-03).
TEST_XLA_FLAGS := --xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false \
  --xla_llvm_disable_expensive_passes=true
test: install
	XLA_FLAGS="$(XLA_FLAGS) $(TEST_XLA_FLAGS)" \
	  $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

benchmark: install
	$(PY) experiments/benchmark.py --config=configs/benchmark.py

clean:
	rm -rf $(VENV) .jax_cache runs
