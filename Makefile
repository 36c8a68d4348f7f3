# Portico build.  `make` builds bin/portico; `make check` runs every test;
# `make run` starts the demo; `make bench` runs the benchmarks.
# SANITIZE=address,undefined builds into build-san/ with sanitizers.

PKGS     := libh2o-evloop python3-embed sqlite3 libsodium jansson libpq openssl
CC       ?= cc
PYTHON   := /usr/bin/python3
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g
ifneq ($(SANITIZE),)
BUILD    ?= build-san
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
else
BUILD    ?= build
endif
DEPS_OK  := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(WARN) $(CFLAGS) -Isrc -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LIBS       := $(PKG_LIBS) -lpthread -lm

SRCS     := $(wildcard src/*/*.c)
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/main.o
BIN      := $(BUILD)/portico
TEST_SRCS := $(wildcard tests/unit/*.c tests/unit/*/*.c)
TEST_BIN := $(BUILD)/unit-tests

.PHONY: all deps check unit integration run bench clean format format-check
all: deps $(BIN)
	@ln -sf ../$(BIN) bin/portico 2>/dev/null || (mkdir -p bin && ln -sf ../$(BIN) bin/portico)

deps:
ifneq ($(DEPS_OK),yes)
	@scripts/install-deps.sh
	@$(MAKE) --no-print-directory $(MAKECMDGOALS)
	@exit 0
endif

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The Python half of the handler runtime is compiled into the binary as a byte array.
$(BUILD)/gen/prelude.inc: src/py/prelude.py
	@mkdir -p $(dir $@)
	od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@
$(BUILD)/obj/py/runtime.o: $(BUILD)/gen/prelude.inc

$(BIN): $(OBJS) $(MAIN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(TEST_BIN): $(OBJS) $(TEST_SRCS)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $(TEST_SRCS) $(OBJS) $(LIBS)

unit: deps $(TEST_BIN)
	$(TEST_BIN)

integration: all
	PORTICO_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q tests/integration

check: scripts/install-deps.sh
	@scripts/install-deps.sh --check-only || scripts/install-deps.sh
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

run: all
	scripts/demo.sh $(abspath $(BIN))

bench: all
	bench/run.sh $(abspath $(BIN))

format:
	clang-format -i $(SRCS) src/main.c $(wildcard src/*/*.h)

format-check:
	clang-format --dry-run -Werror $(SRCS) src/main.c $(wildcard src/*/*.h)

clean:
	rm -rf build build-san bin

-include $(OBJS:.o=.d) $(MAIN_OBJ:.o=.d)
