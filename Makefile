# A thin wrapper: `cmake -B build && cmake --build build` works on its own.
# make demo: install deps, build, run a local node doing real work.
# make test: install deps, build (normal + ASan/UBSan), run every test.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build build-asan demo test test-fast bench format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCADRE_SANITIZE=ON -DCADRE_BENCH=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

test: build build-asan
	@scripts/test.sh $(BUILD) $(ASAN_BUILD)

test-fast: build
	@cd $(BUILD) && ctest --output-on-failure -j2

bench: build
	@bench/compare.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
