# asyncd build: one GNU Makefile, pkg-config for every library, -MMD header dependencies.
PKG_CONFIG ?= pkg-config
CC ?= cc
PREFIX ?= /usr/local
SANITIZER ?=
BUILD ?= build
BIN ?= bin

LIBS_DAEMON := libmicrohttpd jansson sqlite3 libcrypto uuid libmariadb libpq libcurl
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
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/ui_assets.o
# The web console's files (ui/), built into libasyncd as a generated C file (src/ui/ui.h).
UI_ASSETS := $(sort $(wildcard ui/*))
CTL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard tools/*.c)) src/common/xalloc.c)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

FORMAT_SRC = $(sort $(wildcard src/*.c src/*/*.c src/*/*.h tools/*.c tools/*.h tests/unit/*.c \
	tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h bench/*.c))

.PHONY: all run test test-unit test-it bench bench-tasks bench-client bench-renew install clean deps check format format-check fuzz \
	fuzz-build fuzz-smoke
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

$(BUILD)/gen/ui_assets.c: $(UI_ASSETS) scripts/embed_assets.sh
	@mkdir -p $(@D)
	@echo "GEN $@"
	@bash scripts/embed_assets.sh $@ $(UI_ASSETS)

$(BUILD)/gen/ui_assets.o: $(BUILD)/gen/ui_assets.c
	@echo "CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

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

# libFuzzer targets (tests/fuzz/): the library built again with clang and
# -fsanitize=fuzzer-no-link,address,undefined in $(FUZZ_BUILD), each target linked with
# -fsanitize=fuzzer. `make fuzz FUZZ_S=N` runs each target N seconds; `make fuzz-smoke` replays
# the seed corpus and the regressions and fuzzes each target $(FUZZ_SMOKE_S) s (tests/fuzz/run.sh).
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_S ?= 60
FUZZ_SMOKE_S ?= 2
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=c17 -D_GNU_SOURCE -Wall -Wextra -Wformat=2 -Isrc -MMD -MP -pthread \
	$(FUZZ_SAN) $(DAEMON_CFLAGS)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/gen/ui_assets.o
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(@D)
	@echo "CC(fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/gen/ui_assets.c: $(UI_ASSETS) scripts/embed_assets.sh
	@mkdir -p $(@D)
	@echo "GEN $@"
	@bash scripts/embed_assets.sh $@ $(UI_ASSETS)

$(FUZZ_BUILD)/gen/ui_assets.o: $(FUZZ_BUILD)/gen/ui_assets.c
	@echo "CC(fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libasyncd.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_BUILD)/libasyncd.a
	@mkdir -p $(@D)
	@echo "LINK(fuzz) $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer \
		-DFUZZ_FLOWS_DIR='"$(CURDIR)/flows"' -o $@ $< $(FUZZ_BUILD)/libasyncd.a $(DAEMON_LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh long $(FUZZ_S)

fuzz-smoke: fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh smoke $(FUZZ_SMOKE_S)

# The fast loop: build, unit tests and the fuzz smoke, no database servers (the PostgreSQL and
# MariaDB groups run only when ASYNCD_TEST_PG_URL / ASYNCD_TEST_MYSQL_DSN name one), format check.
check: all format-check
	@pg=$${ASYNCD_TEST_PG:-$$([ -n "$${ASYNCD_TEST_PG_URL:-}" ] && echo 1 || echo 0)}; \
		my=$${ASYNCD_TEST_MYSQL:-$$([ -n "$${ASYNCD_TEST_MYSQL_DSN:-}" ] && echo 1 || echo 0)}; \
		ASYNCD_TEST_PG=$$pg ASYNCD_TEST_MYSQL=$$my $(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory fuzz-smoke FUZZ_SMOKE_S=1

# Every C file is in the committed .clang-format's style; format-check fails naming the ones not.
format:
	@clang-format -i $(FORMAT_SRC)

format-check:
	@bad=$$(for f in $(FORMAT_SRC); do clang-format --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
		if [ -n "$$bad" ]; then echo "format-check: not in .clang-format style (make format):"; \
		echo "$$bad" | sed 's/^/  /'; exit 1; fi

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

bench-tasks: all $(BUILD)/bench/load_client
	bash bench/tasks.sh

# One lease renewal round with 1, 100 and 10,000 leases of one node: by node and per task
# (bench/lease_renew.c; `build/bench/lease_renew postgres://...` for PostgreSQL).
$(BUILD)/bench/lease_renew: bench/lease_renew.c $(BUILD)/libasyncd.a
	@mkdir -p $(@D)
	@echo "LINK $@"
	@$(CC) $(CFLAGS) $(DAEMON_CFLAGS) -o $@ $< $(BUILD)/libasyncd.a $(DAEMON_LDLIBS) $(LDFLAGS)

# The C load client of bench/tasks.sh, pg.sh and pgboss.sh (bench/load_client.c).
$(BUILD)/bench/load_client: bench/load_client.c
	@mkdir -p $(@D)
	@echo "LINK $@"
	@$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags jansson) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs jansson) -lm $(LDFLAGS)

bench-client: $(BUILD)/bench/load_client

bench-renew: $(BUILD)/bench/lease_renew
	$(BUILD)/bench/lease_renew

# `make install DESTDIR=... PREFIX=...`: the two binaries, the shipped templates, the systemd
# unit (its ExecStart names these paths), an example config (kept if one is there already) and
# the man pages. NOBUILD=1 installs the binaries already in $(BIN) without building.
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
FLOWSDIR := $(DATADIR)/asyncd/flows
CONFFILE := $(SYSCONFDIR)/asyncd/asyncd.conf

install: $(if $(NOBUILD),,all)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(FLOWSDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/asyncd $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN)/asyncd $(BIN)/asyncctl $(DESTDIR)$(BINDIR)/
	cd flows && find . -type d -exec install -d $(DESTDIR)$(FLOWSDIR)/{} \; && \
		find . -type f -exec install -m 0644 {} $(DESTDIR)$(FLOWSDIR)/{} \;
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@CONFFILE@|$(CONFFILE)|g' \
		-e 's|@FLOWSDIR@|$(FLOWSDIR)|g' packaging/asyncd.service.in > $(DESTDIR)$(UNITDIR)/asyncd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/asyncd.service
	[ -e $(DESTDIR)$(CONFFILE) ] || install -m 0644 packaging/asyncd.conf $(DESTDIR)$(CONFFILE)
	install -m 0644 man/asyncd.8 $(DESTDIR)$(MANDIR)/man8/asyncd.8
	install -m 0644 man/asyncctl.1 $(DESTDIR)$(MANDIR)/man1/asyncctl.1

clean:
	rm -rf build build-asan build-fuzz bin

-include $(shell find $(BUILD) build-asan $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
