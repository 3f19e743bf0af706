# Everything runs from a fresh clone: the venv and node_modules are created on first use.
PY      := .venv/bin/python
VENV    := .venv/.stamp-deps
NODE    := node_modules/.stamp-deps
FW_SRC  := $(shell find firmware boards -name '*.py' 2>/dev/null)
SIM_URL ?=

.PHONY: test pytest mpy check build sim bench memreport fuzz soak clean

test: $(VENV) $(NODE) check mpy pytest

$(VENV): requirements-dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

pytest: $(VENV) $(NODE)
	$(PY) -m pytest -q host_tests

# Every firmware and board module must compile for MicroPython.
mpy: $(VENV)
	$(PY) tools/build.py --check

build: $(VENV)
	$(PY) tools/build.py --out build

check: $(VENV)
	.venv/bin/ruff check firmware boards tools host_tests
	.venv/bin/mypy

sim: $(VENV)
	$(PY) tools/devsim.py $(SIM_URL)

memreport: $(VENV) $(NODE)
	$(PY) tools/memreport.py

fuzz: $(VENV)
	FUZZ_EXAMPLES=20000 $(PY) -m pytest -q host_tests/test_fuzz_station.py host_tests/test_schema.py

soak: $(VENV)
	$(PY) tools/soak.py --sessions 60 --seed 1 --seconds 600

bench: $(VENV)
	$(PY) tools/bench_latency.py

clean:
	rm -rf build .venv node_modules .sim
