# Portico build.  `make` builds bin/portico; `make check` runs every test (and each fuzz target
# for FUZZ_SECONDS; not again with SANITIZE, as the fuzz targets always have ASan and UBSan);
# `make run` starts the demo; `make bench` runs the benchmarks; `make soak` runs SOAK_SECONDS
# (600) of mixed load and fails when memory or descriptors grow.
# SANITIZE=address,undefined builds into build-san/ with sanitizers.
# BUILD=dir puts the objects and binaries elsewhere. When pkg-config cannot find the libraries,
# the user-facing targets run scripts/install-deps.sh first and then start make over.

PKGS     := libh2o-evloop python3-embed sqlite3 libsodium jansson libpq openssl
CC       ?= cc
PYTHON   := /usr/bin/python3
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
# Sanitizer flags live apart from CFLAGS/LDFLAGS so that `make CFLAGS=-O0 SANITIZE=...` keeps them.
ifneq ($(SANITIZE),)
BUILD    ?= build-san
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD    ?= build
SAN_FLAGS :=
endif
DEPS_OK  := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(WARN) $(CFLAGS) $(SAN_FLAGS) -Isrc \
              -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LIBS       := $(PKG_LIBS) -lpthread -lm

SRCS     := $(wildcard src/*/*.c)
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/main.o
BIN      := $(BUILD)/portico
TEST_SRCS := $(wildcard tests/unit/*.c tests/unit/*/*.c)
TEST_OBJS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/test-obj/%.o)
TEST_BIN := $(BUILD)/unit-tests
FORMAT_SRCS := $(SRCS) $(wildcard src/main.c src/*/*.h tests/unit/*.[ch] tests/unit/*/*.[ch] \
               tests/fuzz/*.[ch])
# libFuzzer targets (tests/fuzz/fuzz_<name>.c) need clang (and libclang-rt-14-dev). The sources
# are compiled once more with clang, ASan and UBSan into an archive, so each target links only the
# objects it uses. FUZZ_SECONDS is per target; the total stays under two minutes.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 8
FUZZ_TARGETS := jwt webhook_sig router config import json request
FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_OBJS    := $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/libportico.a
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(WARN) -g -O1 \
                -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
                -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
# (The sources get -Wno-shadow: clang's also warns of locals named like libc globals, `tzname`.)

.DEFAULT_GOAL := all
.PHONY: all deps check unit unit-valgrind integration fuzz fuzz-build soak run bench clean \
        format format-check

ifneq ($(DEPS_OK),yes)
# Libraries missing: install them, then run the same goal in a fresh make, which sees the new
# pkg-config results. PT_DEPS_TRIED stops a loop when installing did not help.
ifneq ($(PT_DEPS_TRIED),)
$(error pkg-config still cannot find some of: $(PKGS) (after scripts/install-deps.sh))
endif
# One apt-get at a time, even under -j.
.NOTPARALLEL:
all check run bench unit unit-valgrind integration fuzz soak deps:
	@scripts/install-deps.sh
	@$(MAKE) --no-print-directory PT_DEPS_TRIED=1 $@

else

all: $(BIN)
ifeq ($(SANITIZE),)
	@mkdir -p bin && ln -sfr $(BIN) bin/portico
endif

deps:
	@scripts/install-deps.sh --check-only >/dev/null || scripts/install-deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The Python half of the handler runtime is compiled into the binary as a byte array.
$(BUILD)/gen/prelude.inc: src/py/prelude.py
	@mkdir -p $(dir $@)
	od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@
$(BUILD)/obj/py/runtime.o: $(BUILD)/gen/prelude.inc

# The web console (console/ and Debian's libjs-codemirror) is compiled in as byte arrays.
CODEMIRROR_DIR ?= /usr/share/javascript/codemirror
CONSOLE_FILES := $(wildcard console/*) $(wildcard $(CODEMIRROR_DIR)/lib/codemirror.* \
                 $(CODEMIRROR_DIR)/mode/python/python.js)
$(BUILD)/gen/console_assets.inc: $(CONSOLE_FILES) scripts/embed-console.py
	@mkdir -p $(dir $@)
	@$(PYTHON) scripts/embed-console.py $@ console $(CODEMIRROR_DIR)
$(BUILD)/obj/server/console.o: $(BUILD)/gen/console_assets.inc

$(BUILD)/test-obj/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -c $< -o $@

$(BIN): $(OBJS) $(MAIN_OBJ)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(TEST_BIN): $(TEST_OBJS) $(OBJS)
	$(CC) $(SAN_FLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

unit: $(TEST_BIN)
	$(TEST_BIN)

# The unit tests must also be clean under valgrind (not meaningful with SANITIZE).
unit-valgrind: $(TEST_BIN)
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    $(TEST_BIN)

# PORTICO_SANITIZED tells the tests that memory figures (RSS) are not meaningful. Test files run
# PYTEST_JOBS at a time (pytest-xdist), then the `load` tests alone; the sanitizer pass leaves
# out the `load` and `plain_only` tests (tests/integration/conftest.py says why).
PYTEST_JOBS ?= 2
PYTEST_RUN = PORTICO_BIN=$(abspath $(BIN)) PORTICO_SANITIZED=$(SANITIZE) $(PYTHON) -m pytest -q
integration: all
	$(PYTEST_RUN) -n $(PYTEST_JOBS) --dist loadfile --durations=15 \
	    -m "not load$(if $(SANITIZE), and not plain_only)" tests/integration
ifeq ($(SANITIZE),)
	$(PYTEST_RUN) --durations=5 -m load tests/integration
endif

$(FUZZ_BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-shadow -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/obj/py/runtime.o: $(BUILD)/gen/prelude.inc
$(FUZZ_BUILD)/obj/server/console.o: $(BUILD)/gen/console_assets.inc

$(FUZZ_LIB): $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/fuzz_py.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< $(FUZZ_LIB) -o $@ $(LIBS)

fuzz-build: $(FUZZ_BINS)

# Each target for FUZZ_SECONDS, one after the other. New inputs go to $(BUILD)/fuzz-corpus/<name>;
# tests/fuzz/<name>/ holds the seeds (read only), tests/fuzz/<name>.dict the tokens, if any.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/fuzz-corpus/$$t; \
	    dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	    echo "==> fuzz $$t ($(FUZZ_SECONDS) s)"; \
	    $(FUZZ_BUILD)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 \
	        -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz-corpus/$$t- $$dict \
	        $(BUILD)/fuzz-corpus/$$t tests/fuzz/$$t \
	        2>$(BUILD)/fuzz-corpus/$$t.log || { tail -n 80 $(BUILD)/fuzz-corpus/$$t.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' $(BUILD)/fuzz-corpus/$$t.log || true; \
	done

# SOAK_SECONDS (600) of mixed load with RSS and descriptors sampled; fails when they grow.
soak: all
	$(PYTHON) tests/soak/soak.py $(abspath $(BIN))

# The test tools (pytest, requests, ...) are not pkg-config packages: check them here too.
check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
ifeq ($(SANITIZE),)
	@$(MAKE) --no-print-directory fuzz
endif

run: all
	scripts/demo.sh $(abspath $(BIN))

bench: all
	bench/run.sh $(abspath $(BIN))

endif

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	clang-format --dry-run -Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-san bin

-include $(OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(TEST_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
