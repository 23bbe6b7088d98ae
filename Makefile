# asyncd build: one GNU Makefile, pkg-config for every library, -MMD header dependencies.
PKG_CONFIG ?= pkg-config
CC ?= cc
PREFIX ?= /usr/local
SANITIZER ?=
BUILD ?= build
BIN ?= bin

LIBS_DAEMON := libmicrohttpd jansson sqlite3 libcrypto uuid libmariadb libpq
LIBS_CTL := libcurl jansson
LIBS_TEST := cmocka

WARN := -Wall -Wextra -Wpedantic -Werror -Wformat=2 -Wshadow -Wstrict-prototypes
CFLAGS ?= -O2 -g
CFLAGS += -std=c17 -D_GNU_SOURCE $(WARN) -Isrc -MMD -MP -pthread
ifneq ($(SANITIZER),)
CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZER)
endif
DAEMON_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIBS_DAEMON))
DAEMON_LDLIBS := $(shell $(PKG_CONFIG) --libs $(LIBS_DAEMON)) -pthread -lm
CTL_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LIBS_CTL))
CTL_LDLIBS := $(shell $(PKG_CONFIG) --libs $(LIBS_CTL))
TEST_LDLIBS := $(shell $(PKG_CONFIG) --libs $(LIBS_TEST))

LIB_SRC := $(sort $(filter-out src/main.c,$(wildcard src/*/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tools/*.c)) src/common/xalloc.c)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test test-unit test-it bench bench-tasks install clean deps
all: $(BIN)/asyncd $(BIN)/asyncctl

$(BIN)/asyncd: $(BUILD)/src/main.o $(BUILD)/libasyncd.a
	@mkdir -p $(@D)
	@echo "LINK $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LDLIBS)

$(BIN)/asyncctl: $(CTL_OBJ)
	@mkdir -p $(@D)
	@echo "LINK $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(CTL_LDLIBS)

$(BUILD)/libasyncd.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(CFLAGS) $(CTL_CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(CFLAGS) $(DAEMON_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libasyncd.a
	@mkdir -p $(@D)
	@echo "LINK $@"
	@$(CC) $(CFLAGS) $(DAEMON_CFLAGS) -o $@ $< $(BUILD)/libasyncd.a $(TEST_LDLIBS) $(DAEMON_LDLIBS) $(LDFLAGS)

deps:
	bash scripts/deps.sh

run: deps all
	bash scripts/run.sh

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test-it: all
	ASYNCD_BIN=$(BIN)/asyncd ASYNCCTL_BIN=$(BIN)/asyncctl bash tests/it/run.sh

# The whole suite against one throw-away MariaDB: unit + integration on the normal build, then
# again on an ASan+UBSan build (scripts/test.sh).
test: deps
	bash scripts/test.sh

bench: all
	bash bench/run.sh

bench-tasks: all
	bash bench/tasks.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/asyncd bin/asyncctl $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-asan bin

-include $(shell find $(BUILD) build-asan -name '*.d' 2>/dev/null)
