# Two entry points, each installs whatever is missing first (system packages, npm deps, native addon, build):
#   make demo   - the main job
#   make test   - the test suite (what CI runs)
SHELL := /bin/bash
TS_SOURCES := $(shell find src test -name '*.ts' 2>/dev/null)
NATIVE_SOURCES := $(wildcard native/*.cc native/*.h native/binding.gyp)
ADDON := native/build/Release/emseg_native.node

.PHONY: setup build test demo bench clean
setup: .stamps/system node_modules/.package-lock.json $(ADDON) dist/.built

.stamps/system: scripts/ensure-system-deps.sh
	@bash scripts/ensure-system-deps.sh
	@mkdir -p .stamps && touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(ADDON): $(NATIVE_SOURCES) node_modules/.package-lock.json .stamps/system
	npm run --silent build:native

dist/.built: $(TS_SOURCES) tsconfig.json node_modules/.package-lock.json
	npx tsc -p .
	@touch $@

build: setup

test: setup
	npm test

demo: setup
	node bin/emseg.js demo

bench: setup
	node bin/emseg.js bench reference-net

clean:
	rm -rf dist native/build .stamps
