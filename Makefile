# Entry points; each installs whatever is missing first (system packages, npm deps, native addon, build):
#   make demo       - the main job
#   make test       - the test suite, then the packed package installed and run in an empty folder (make test-pack);
#                     needs nothing outside the repository
#   make test-full  - the tests that need the full data in ../shared/ beside the repository (CI runs both)
#   make lint       - Biome's lint and the noUncheckedIndexedAccess check of tsconfig.strict.json (part of make test)
#   make test-fast  - for development: an incremental build, lint, and the unit-level tests (about half a minute)
SHELL := /bin/bash
TS_SOURCES := $(shell find src test -name '*.ts' 2>/dev/null) $(wildcard src/viewer/page/*.html src/viewer/page/*.css)
NATIVE_SOURCES := $(wildcard native/*.cc native/*.h native/binding.gyp native/ops.json) scripts/gen-native-ops.mjs
ADDON := native/build/Release/emseg_native.node

.PHONY: setup build build-fast lint test test-fast test-pack test-full demo bench clean
setup: .stamps/system node_modules/.package-lock.json $(ADDON) dist/.built

.stamps/system: scripts/ensure-system-deps.sh
	@bash scripts/ensure-system-deps.sh
	@mkdir -p .stamps && touch $@

# onnxruntime-node's CPU library ships inside its npm package; its install step would try to download more.
node_modules/.package-lock.json: package.json package-lock.json
	ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund

$(ADDON): $(NATIVE_SOURCES) node_modules/.package-lock.json .stamps/system
	npm run --silent build:native

# A clean build: a test deleted from test/ must not keep running from a stale dist/.
dist/.built: $(TS_SOURCES) tsconfig.json node_modules/.package-lock.json
	rm -rf dist
	npx tsc -p .
	npm run --silent build:viewer
	@touch $@

build: setup

# Incremental, for development: only changed files recompile (dist/.tsbuildinfo), and compiled files whose source is
# gone are removed; `make build` and `make test` still build dist/ from scratch.
build-fast: .stamps/system node_modules/.package-lock.json $(ADDON)
	npx tsc -p . --incremental --tsBuildInfoFile dist/.tsbuildinfo
	node scripts/prune-dist.mjs

lint: node_modules/.package-lock.json
	npm run --silent lint

# test-pack: the packed tarball installed into an empty folder, then `npx emseg demo` there (scripts/test-pack.sh).
test: setup lint
	npm test
	bash scripts/test-pack.sh

test-pack: setup
	bash scripts/test-pack.sh

# Unit-level tests that need no browser, Redis, subprocess or training run; the full suite stays `make test`.
TEST_FAST := architecture docs io io-dataset metrics-units metrics-breakdown malis nn-spec nn-network nn-optim models-io \
	backend-refusals border-weight reference-backend reference-conv reference-elementwise reference-loss reference-lrn \
	reference-pool reference-shape
test-fast: build-fast lint
	node --test --test-concurrency=1 $(TEST_FAST:%=dist/test/%.test.js)

SHARED_DATA := ../shared/data/isbi2012 ../shared/fixtures/isbi-metrics
test-full: setup
	@for d in $(SHARED_DATA); do [ -d "$$d" ] || { echo "make test-full: $$d is missing; the full-data tests need the ISBI 2012 data and metric fixtures in ../shared/ beside the repository (CI has them). 'make test' needs only the repository." >&2; exit 1; }; done
	npm run --silent test:full

demo: setup
	node bin/emseg.js demo

bench: setup
	node bin/emseg.js bench reference-net

clean:
	rm -rf dist native/build .stamps
