# spatial_mllm_ros — one-command setup, demo, tests and benchmarks without a ROS install.
#
#   make setup   .venv with pinned ROS 2 wheels + torch, CMake path fix, colcon build (idempotent)
#   make demo    the main job on the embedded default (tiny generated checkpoint)
#   make test    every test tier (unit, tiny-model, real-process ROS end to end)
#   make bench   benchmarks (figures are printed; nothing is asserted)
#   make lint    import contracts (lint-imports) + ruff + mypy
#
# A shell is ready after:  source .venv/bin/activate && source install/setup.bash

SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.stamp
# colcon builds the package through a workspace whose src/ links back to this checkout, so
# that the venv (inside the checkout) is not "inside the source directory" for CMake's
# export checks; see README "Package layout".
WS_SRC := .ws/src
ROS_ENV := export AMENT_PREFIX_PATH=$(CURDIR)/$(VENV) CMAKE_PREFIX_PATH=$(CURDIR)/$(VENV);
# The embedded default checkpoint of this checkout (the node generates it here when absent).
export SPATIAL_MLLM_TINY_CHECKPOINT := $(CURDIR)/artifacts/tiny-v1.1
RUN := source $(VENV)/bin/activate && source install/setup.bash &&
ARTIFACTS := artifacts

.PHONY: setup venv build demo test imports test-unit test-model test-ros bench lint tiny clean distclean

setup: build tiny

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

REQUIREMENTS := requirements/ros-wheels.txt requirements/python.txt

$(STAMP): $(REQUIREMENTS) setup.cfg setup.py pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	$(VPY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(VPY) scripts/fix_ros_wheel_cmake.py $(VENV)
	touch $(STAMP)

venv: $(STAMP)

build: venv
	mkdir -p $(WS_SRC)
	ln -sfn ../.. $(WS_SRC)/spatial_mllm_ros
	mkdir -p log
	source $(VENV)/bin/activate && $(ROS_ENV) colcon --log-base log build \
	  --base-paths $(WS_SRC) --symlink-install --build-base build --install-base install \
	  --event-handlers console_cohesion- summary- \
	  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=$(CURDIR)/$(VPY) > log/colcon-build.txt 2>&1 \
	  || { cat log/colcon-build.txt; exit 1; }
	@echo "build: ok (log/colcon-build.txt)"

# The embedded default model: a tiny checkpoint in the released v1.1 format, generated once.
tiny: $(ARTIFACTS)/tiny-v1.1/config.json
$(ARTIFACTS)/tiny-v1.1/config.json: | build
	$(RUN) spatial-mllm-checkpoint tiny $(ARTIFACTS)/tiny-v1.1 --layout v1.1

# The demo's processes (node, stream publisher, asker) share the shipped Fast DDS profile: a
# shared-memory segment that holds several 1-2 MB images (README, "Camera transport").
DDS_PROFILE := $(CURDIR)/config/fastdds_large_data.xml

demo: export FASTDDS_DEFAULT_PROFILES_FILE := $(DDS_PROFILE)
demo: setup
	$(RUN) $(VPY) -m spatial_mllm_ros.demo

# The architecture contracts (.importlinter) are part of every test run.
imports: setup
	$(RUN) $(VENV)/bin/lint-imports --no-cache

test: imports
	$(RUN) $(VPY) -m pytest -q test

test-unit: setup
	$(RUN) $(VPY) -m pytest -q test/unit

test-model: setup
	$(RUN) $(VPY) -m pytest -q test/model

test-ros: setup
	$(RUN) $(VPY) -m pytest -q test/ros

# Every benchmark runs even if one fails; the failures are listed at the end.
bench: setup
	$(RUN) failed=""; for b in benchmarks/bench_*.py; do echo "== $$b"; \
	  $(VPY) $$b $(BENCH_ARGS) || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed"; exit 1; fi

lint: imports
	$(VPY) -m ruff check spatial_mllm_ros test benchmarks scripts
	$(RUN) $(VPY) -m mypy spatial_mllm_ros

clean:
	rm -rf build install log .ws $(ARTIFACTS)

distclean: clean
	rm -rf $(VENV)
