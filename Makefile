# The front door.  CMake does the work underneath; each flavour of build
# lives in its own tree so they never mix.
#
#   make            build (build/)
#   make test       build and run the whole suite: ends with "N passed, N failed"
#   make run        the main job: the walkthroughs (examples/), printing what they do
#   make bench      benchmarks, against Boost.Interprocess where it has an equivalent
#   make install    install (PREFIX=/usr/local)
#   make asan       the suite under AddressSanitizer + UBSan (build-asan/)
#   make tsan       the suite under ThreadSanitizer (build-tsan/)
#   make valgrind   the suite under valgrind memcheck, leaks are errors
#   make fuzz       libFuzzer targets for a bounded time (clang)
#   make clean
#
# Variables: CC (compiler), WERROR=1 (warnings are errors), PREFIX,
# BUILD (tree of the default build), FUZZ_SECONDS.

CC ?= cc
BUILD ?= build
PREFIX ?= /usr/local
WERROR ?= 0
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)

CMAKE_COMMON = -DCMAKE_C_COMPILER=$(CC) $(if $(filter 1,$(WERROR)),-DIPX_WERROR=ON,-DIPX_WERROR=OFF)

.PHONY: all build deps test run bench install asan tsan valgrind fuzz clean

all: build

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

# configure + build one tree: $(call build_tree,DIR,EXTRA_CMAKE_ARGS)
define build_tree
	cmake -S . -B $(1) $(CMAKE_COMMON) $(2) >/dev/null
	cmake --build $(1) -j $(JOBS)
endef

build: deps
	$(call build_tree,$(BUILD),-DCMAKE_INSTALL_PREFIX=$(PREFIX))

test: build
	@scripts/run-tests.sh $(BUILD)

run: build
	@scripts/run-main.sh $(BUILD)

bench: deps
	@scripts/install-deps.sh --bench
	$(call build_tree,build-bench,-DCMAKE_BUILD_TYPE=Release -DIPX_BUILD_BENCH=ON -DIPX_BENCH_BOOST=ON)
	@scripts/run-bench.sh build-bench

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

asan: deps
	$(call build_tree,build-asan,-DCMAKE_BUILD_TYPE=Debug -DIPX_SANITIZE=address$(,)undefined -DIPX_BUILD_BENCH=OFF)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/run-tests.sh build-asan

tsan: deps
	$(call build_tree,build-tsan,-DCMAKE_BUILD_TYPE=Debug -DIPX_SANITIZE=thread -DIPX_TEST_SCALE=0.05 -DIPX_BUILD_BENCH=OFF)
	@TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 scripts/run-tests.sh build-tsan

valgrind: deps
	$(call build_tree,build-valgrind,-DCMAKE_BUILD_TYPE=Debug -DIPX_TEST_SCALE=0.02 -DIPX_BUILD_BENCH=OFF \
	  "-DIPX_TEST_WRAPPER=valgrind;--quiet;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite$(,)indirect;--trace-children=yes;--child-silent-after-fork=no")
	@IPX_TEST_SLOW=1 scripts/run-tests.sh build-valgrind

fuzz: deps
	@scripts/install-deps.sh --fuzz
	$(call build_tree,build-fuzz,-DCMAKE_C_COMPILER=clang -DIPX_FUZZ=ON -DIPX_BUILD_TESTS=OFF -DIPX_BUILD_BENCH=OFF -DIPX_SANITIZE=address$(,)undefined)
	@scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-valgrind build-bench build-fuzz build-clang

, := ,
