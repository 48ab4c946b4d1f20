# pycni: a Container Network Interface in pure Python.
PYTHON ?= /usr/bin/python3
VENV ?= .venv
HOSTPY ?= $(shell command -v python3 || echo $(PYTHON))
DESTDIR ?=
PREFIX ?= /opt/cni/bin
SOURCES := $(shell find lib plugins zipapp -name '*.py' -not -path '*/__pycache__/*')

.PHONY: FORCE all build test unit integration test-deps venv bench demo install clean test-zipapps

all: build

build: bin/.stamp

bin/.stamp: $(SOURCES) bin/.python
	$(PYTHON) zipapp/build.py --python $(PYTHON)
	@touch $@

# rebuild when PYTHON changes (it is in every shebang and compiled the bytecode)
bin/.python: FORCE
	@mkdir -p bin; echo '$(PYTHON)' | cmp -s - $@ || echo '$(PYTHON)' > $@

FORCE:

$(VENV)/bin/pytest:
	$(HOSTPY) -m venv $(VENV)
	$(VENV)/bin/pip install -q pytest vermin

venv: $(VENV)/bin/pytest

test-deps:
	@sh scripts/test-deps.sh

test: build venv test-deps
	$(VENV)/bin/pytest -q tests

unit: build venv
	$(VENV)/bin/pytest -q tests/unit

test-zipapps: build
	@for b in bin/*; do [ "$$b" = bin/cnitool ] && continue; printf '%s: ' $$b; \
	    echo '{"cniVersion":"1.0.0"}' | CNI_COMMAND=VERSION $$b || exit 1; echo; done

BENCH_VENV ?= .venv-bench

$(BENCH_VENV)/bin/python:
	$(HOSTPY) -m venv $(BENCH_VENV)
	-$(BENCH_VENV)/bin/pip install -q pyroute2   # the netlink bench compares against it

bench: build test-deps $(BENCH_VENV)/bin/python
	$(BENCH_VENV)/bin/python bench/run.py

demo: build
	@sh scripts/test-deps.sh --demo
	@sh scripts/demo.sh

install: build
	install -d $(DESTDIR)$(PREFIX)
	install -m 0755 bin/* $(DESTDIR)$(PREFIX)/

clean:
	rm -rf bin build
