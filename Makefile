# Everything runs from a fresh clone: the venv and node_modules are created on first use.
PY      := .venv/bin/python
VENV    := .venv/.stamp-deps
NODE    := node_modules/.stamp-deps
FW_SRC  := $(shell find firmware boards -name '*.py' 2>/dev/null)
SIM_URL ?=

.PHONY: test browser pytest mpy check build sim bench bench-crypto flashwear memreport mcu-check fuzz fuzz-long soak conformance clean fleet-demo locust-demo deploy repl image package-json

test: $(VENV) $(NODE) browser check mpy pytest

# The dashboard's browser test drives Debian's Chromium (playwright downloads
# nothing): install it where we may; without it that one test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && \
	   apt-get install -y -q chromium >/dev/null 2>&1)); } || \
	  echo "chromium could not be installed: the dashboard browser test will be skipped"

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
	$(PY) tools/build.py --out build $(if $(BOARD),--board $(BOARD))

check: $(VENV)
	.venv/bin/ruff check firmware boards tools host_tests
	.venv/bin/mypy

sim: $(VENV)
	$(PY) tools/devsim.py $(SIM_URL)

memreport: $(VENV) $(NODE)
	$(PY) tools/memreport.py

# The heap on a real MicroPython binary (issue 18; docs/PERFORMANCE.md says how
# to build one): the smallest heap per workload over ws and wss against the CSMS.
# Given to `make test`, host_tests/test_mcu_heap.py checks the budgets on it.
MICROPY ?=
export MICROPY
mcu-check: $(VENV)
	$(PY) tools/mcucheck.py $(if $(MICROPY),--micropython $(MICROPY))

# The hypothesis fuzz tests at 20,000 examples (the station's split over two
# processes) and the replay of the kept corpus; prints the inputs per surface.
FUZZ_EXAMPLES ?= 20000
fuzz: $(VENV)
	$(PY) tools/fuzz.py quick --examples $(FUZZ_EXAMPLES)

# Coverage-guided (atheris) fuzz of every input surface in SECONDS, two
# processes at once; a table per surface, the corpus kept in host_tests/fuzz_corpus.
SECONDS ?= 600
fuzz-long: $(VENV)
	$(PY) tools/fuzz.py long --seconds $(SECONDS)

soak: $(VENV)
	$(PY) tools/soak.py --sessions 60 --seed 1 --seconds 600

# OCTT-named cases against the real CSMS over WebSockets: the table (docs/CONFORMANCE.md).
conformance: $(VENV)
	$(PY) tools/conformance.py

bench: $(VENV)
	$(PY) tools/bench_latency.py

# Flash writes per hour (idle, charging at 60 s and 1 s) and the years a 4 MB littlefs partition lasts.
flashwear: $(VENV)
	$(PY) tools/flashwear.py --files

bench-crypto: $(VENV) $(NODE)
	$(PY) tools/bench_crypto.py

clean:
	rm -rf build .venv node_modules .sim

# 1,000 stations (10 s meter values) against the bundled CSMS for 60 s; report + .sim/fleet-demo.csv
fleet-demo: $(VENV)
	timeout 300 $(PY) tools/sim.py --fleet 1000 --duration 60 --scenario tools/scenarios/demo.json --csv .sim/fleet-demo.csv

# Locust: a master and two workers on loopback, 1,000 stations against the bundled CSMS for 60 s;
# Locust's summary, one line per worker; CSVs in .sim/locust-demo_*.csv (tools/locustdemo.py)
locust-demo: $(VENV)
	mkdir -p .sim
	timeout 300 $(PY) tools/locustdemo.py --workers 2 --users 1000 --rate 100 --seconds 60 \
	  --csv .sim/locust-demo --report .sim/locust-demo-workers.json

# Device tooling (tools/deploy.py, docs/DEPLOY.md). DRY_RUN=1 prints the mpremote commands.
BOARD ?= esp32
PORT ?= /dev/ttyUSB0
DEPLOY_FLAGS = $(if $(DRY_RUN),--dry-run) $(if $(CONFIG),--config $(CONFIG)) $(if $(CORE),--core)

deploy: $(VENV)
	$(PY) tools/deploy.py deploy --board $(BOARD) --port $(PORT) $(DEPLOY_FLAGS)

repl: $(VENV)
	$(PY) tools/deploy.py repl --port $(PORT) $(if $(DRY_RUN),--dry-run)

image: $(VENV)
	$(PY) tools/deploy.py image --board $(BOARD)

package-json: $(VENV)
	$(PY) tools/deploy.py package-json
