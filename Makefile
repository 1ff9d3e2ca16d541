# airouter: plain Makefile (model: redis src/Makefile).
#   make            build/airouter            make test       unit + end-to-end tests
#   make run        quickstart server         make test-asan  the same under ASan+UBSan
#   make bench      wrk: airouter vs nginx    make check      include rules + format
#   make install    PREFIX=/usr/local, DESTDIR (README "Install")   make uninstall
# Missing Debian packages are installed by scripts/deps.sh (idempotent) on first use.
#
# A fresh machine has none of them when make reads this file, and make decides which rule
# builds a file (and whether its prerequisites exist) before any recipe runs. So packages are
# installed by recipes (deps-build, deps-test, deps-bench: order-only prerequisites, one
# apt-get at a time) and no rule names a file that a package installs as a prerequisite;
# otherwise the first run fails with "No rule to make target", with or without -j.

CC       := gcc
BUILD    ?= build
SAN      ?= 0
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
LLHTTP_SRC_DIR := /usr/share/llhttp
LLHTTP_INC_DIR := /usr/share/include/llhttp
PG_INC   := /usr/include/postgresql

# llhttp's strict mode rejects what lenient parsers let through (header names with spaces,
# bare LF line ends): a gateway in front of other servers must not reinterpret requests.
LLHTTP_DEFS := -DLLHTTP_STRICT_MODE=1
CFLAGS   := -std=c11 -D_GNU_SOURCE $(LLHTTP_DEFS) $(OPT) $(WARN) -MMD -MP -Isrc -I$(LLHTTP_INC_DIR) -I$(PG_INC) -pthread
LDFLAGS  :=
LDLIBS   := -luv -lcurl -ljansson -lyaml -lssl -lcrypto -lsqlite3 -lpq -lhiredis -lm -pthread
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CFLAGS   += $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
endif

SRC        := $(shell find src -name '*.c' ! -path 'src/cli/main.c' | sort)
LIB_OBJ    := $(SRC:%.c=$(BUILD)/obj/%.o)
TLIB_OBJ   := $(SRC:%.c=$(BUILD)/tobj/%.o)
LLHTTP_OBJ := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
MAIN_OBJ   := $(BUILD)/obj/src/cli/main.o
UNIT_SRC   := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | sort)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
MOCK_SRC   := $(shell find tests/mock_upstream -name '*.c' 2>/dev/null | sort)
MOCK_OBJ   := $(MOCK_SRC:%.c=$(BUILD)/obj/%.o)

V ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif

# The version `airouter --version` prints: a release tag vX.Y.Z as X.Y.Z (with git
# describe's -N-gHASH after it when past the tag), else AR_BASE_VERSION-gHASH from git, else
# AR_BASE_VERSION (a source tarball, a Docker build without .git); -dirty marks uncommitted
# changes. `make VERSION=1.2.3` overrides it. Only main.c is compiled with it; a stamp file
# that changes only when the version does makes main.o depend on it.
AR_BASE_VERSION := 0.1.0
ifneq ($(origin VERSION),command line)
VERSION := $(shell d=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo "$$d" | sed 's/^v//' || \
             { h=$$(git describe --always --dirty 2>/dev/null) && echo "$(AR_BASE_VERSION)-g$$h" || \
               echo "$(AR_BASE_VERSION)"; })
endif
VERSION_STAMP := $(BUILD)/version.stamp
$(shell mkdir -p $(BUILD) && { [ "$$(cat $(VERSION_STAMP) 2>/dev/null)" = '$(VERSION)' ] || \
          echo '$(VERSION)' > $(VERSION_STAMP); })
$(MAIN_OBJ): $(VERSION_STAMP)
$(MAIN_OBJ): CFLAGS += -DAR_VERSION='"$(VERSION)"'

MASTER_KEY ?= sk-airouter-quickstart-key
export MASTER_KEY

.PHONY: all test test-unit test-e2e test-asan run bench leakcheck check clean install uninstall
.PHONY: deps-build deps-test deps-bench
.DEFAULT_GOAL := all

all: $(BUILD)/airouter

# Each runs every time it is needed (dpkg is asked first, so that is cheap); each waits for
# the one before, since two apt-get runs at once fail on dpkg's lock.
deps-build:
	@scripts/deps.sh build

deps-test: | deps-build
	@scripts/deps.sh test

deps-bench: | deps-test
	@scripts/deps.sh bench

$(BUILD)/obj/%.o: %.c | deps-build
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The dashboard's files are assembled into dashboard.o (.incbin), which the compiler's
# dependency files do not know about.
DASHBOARD_FILES := $(wildcard src/admin/dashboard/*)
$(BUILD)/obj/src/admin/dashboard.o $(BUILD)/tobj/src/admin/dashboard.o: $(DASHBOARD_FILES)

# The unit-test variant routes ar_xmalloc through cmocka's checked allocator.
$(BUILD)/tobj/%.o: %.c | deps-build
	@mkdir -p $(@D)
	@echo "  CC    $< (unit)"
	$(Q)$(CC) $(CFLAGS) -DUNIT_TESTING -c $< -o $@

# llhttp is compiled from Debian's node-llhttp sources, never copied into the tree. Its
# source is a prerequisite only once it exists (the wildcard is expanded when make considers
# the object, see the top of this file); before that, deps-build installs it.
.SECONDEXPANSION:
$(BUILD)/llhttp/%.o: $$(wildcard $(LLHTTP_SRC_DIR)/$$*.c) | deps-build
	@mkdir -p $(@D)
	@echo "  CC    $(LLHTTP_SRC_DIR)/$*.c"
	$(Q)$(CC) -std=c11 $(LLHTTP_DEFS) $(OPT) -w -I$(LLHTTP_INC_DIR) $(if $(filter 1,$(SAN)),$(SANFLAGS)) -c $(LLHTTP_SRC_DIR)/$*.c -o $@

$(BUILD)/libairouter.a: $(LIB_OBJ) $(LLHTTP_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libairouter-test.a: $(TLIB_OBJ) $(LLHTTP_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/airouter: $(MAIN_OBJ) $(BUILD)/libairouter.a
	@echo "  LINK  $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mock_upstream: $(MOCK_OBJ) $(LLHTTP_OBJ)
	@echo "  LINK  $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# cmocka comes with the test packages.
$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libairouter-test.a | deps-test
	@mkdir -p $(@D)
	@echo "  TEST  $@"
	$(Q)$(CC) $(CFLAGS) -DUNIT_TESTING -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libairouter-test.a $(LDLIBS) -lcmocka

test-unit: deps-test $(UNIT_BIN)
	@tests/run-unit.sh $(BUILD) $(UNIT_BIN)

test-e2e: deps-test $(BUILD)/airouter $(BUILD)/mock_upstream
	@AIROUTER_BUILD=$(BUILD) tests/run-e2e.sh

test: test-unit test-e2e

test-asan:
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" test

run: $(BUILD)/airouter
	$(BUILD)/airouter -config examples/config.yaml

bench: deps-bench $(BUILD)/airouter $(BUILD)/mock_upstream
	@bench/run.sh $(BUILD)

# 10,000+ keep-alive requests (streaming and not) through the ASan+UBSan build; fails on
# any sanitizer report or a non-zero exit.
leakcheck: deps-bench
	$(MAKE) BUILD=build-asan SAN=1 OPT="-O1 -g" build-asan/airouter build-asan/mock_upstream
	@bench/leakcheck.sh build-asan

check:
	@scripts/check-includes.sh
	@clang-format --dry-run --Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

clean:
	rm -rf build build-asan

# ---- install (README "Install") ----
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]    make uninstall (same variables)
# Installs the binary, the man page, the systemd unit (its paths adjusted to BINDIR and
# SYSCONFDIR), the example config and the nginx TLS front into PREFIX/share/airouter, and the
# example config as SYSCONFDIR/airouter/airouter.yaml unless that file exists (an operator's
# config is never overwritten). systemd looks in /usr/local/lib/systemd/system as well as
# /usr/lib/systemd/system, so the unit is found with either PREFIX. DESTDIR stages the tree
# for a package: nothing is run and no user is created (README, "Install").
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/airouter
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install

install: $(BUILD)/airouter
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/airouter
	$(INSTALL) -m 755 $(BUILD)/airouter $(DESTDIR)$(BINDIR)/airouter
	$(INSTALL) -m 644 docs/airouter.1 $(DESTDIR)$(MANDIR)/man1/airouter.1
	$(INSTALL) -m 644 examples/airouter.yaml $(DESTDIR)$(DATADIR)/airouter.example.yaml
	$(INSTALL) -m 644 examples/nginx/airouter-tls.conf $(DESTDIR)$(DATADIR)/nginx-airouter-tls.conf
	sed -e 's|/usr/local/bin/airouter|$(BINDIR)/airouter|g' -e 's|/etc/airouter/|$(SYSCONFDIR)/airouter/|g' \
		examples/systemd/airouter.service > $(DESTDIR)$(UNITDIR)/airouter.service
	chmod 644 $(DESTDIR)$(UNITDIR)/airouter.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/airouter/airouter.yaml ]; then \
		echo "  kept  $(DESTDIR)$(SYSCONFDIR)/airouter/airouter.yaml (the new example: $(DATADIR)/airouter.example.yaml)"; \
	else \
		echo "$(INSTALL) -m 644 examples/airouter.yaml $(DESTDIR)$(SYSCONFDIR)/airouter/airouter.yaml"; \
		$(INSTALL) -m 644 examples/airouter.yaml $(DESTDIR)$(SYSCONFDIR)/airouter/airouter.yaml; \
	fi

# The config in SYSCONFDIR and the state in /var/lib/airouter are the operator's: kept.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/airouter $(DESTDIR)$(MANDIR)/man1/airouter.1 \
		$(DESTDIR)$(UNITDIR)/airouter.service $(DESTDIR)$(DATADIR)/airouter.example.yaml \
		$(DESTDIR)$(DATADIR)/nginx-airouter-tls.conf
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true
	@echo "  kept  $(DESTDIR)$(SYSCONFDIR)/airouter/ and /var/lib/airouter/ (config and data)"

# ---- fuzzing (libFuzzer, clang): tests/fuzz/README.md ----
#   make fuzz         build every target (tests/fuzz/fuzz_*.c) into build-fuzz/
#   make fuzz-smoke   run each for FUZZ_SMOKE_SECONDS over its seed corpus; part of test-asan
#   make fuzz-long FUZZ_SECONDS=600   run each longer, keeping what it finds; prints exec counts
# The project's sources are compiled again with clang, ASan, UBSan and the fuzzer's coverage
# instrumentation. `fuzz` installs clang first and builds in a second make, so that sources
# installed by scripts/deps.sh exist before make looks for them.
FUZZ_BUILD    := build-fuzz
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                 -fsanitize-ignorelist=tests/fuzz/ubsan-ignore.txt
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE $(LLHTTP_DEFS) -O1 -g $(WARN) -MMD -MP -Isrc \
                 -I$(LLHTTP_INC_DIR) -I$(PG_INC) -pthread $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_NAMES    := $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BIN      := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_OBJ  := $(SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LLHTTP   := $(FUZZ_BUILD)/llhttp/api.o $(FUZZ_BUILD)/llhttp/http.o $(FUZZ_BUILD)/llhttp/llhttp.o
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_SECONDS  ?= 600

.PHONY: fuzz fuzz-bin fuzz-smoke fuzz-long fuzz-clean

fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-bin

fuzz-bin: $(FUZZ_BIN)

$(FUZZ_BUILD)/obj/src/admin/dashboard.o: $(DASHBOARD_FILES)

$(FUZZ_BUILD)/obj/%.o: %.c tests/fuzz/ubsan-ignore.txt
	@mkdir -p $(@D)
	@echo "  CC    $< (fuzz)"
	$(Q)clang $(FUZZ_CFLAGS) -c $< -o $@

# As for the main build: the source is named only once it exists (make caches what it once
# saw missing in a directory, and would then find no rule for the main build's objects).
$(FUZZ_BUILD)/llhttp/%.o: $$(wildcard $(LLHTTP_SRC_DIR)/$$*.c)
	@mkdir -p $(@D)
	@echo "  CC    $(LLHTTP_SRC_DIR)/$*.c (fuzz)"
	$(Q)clang -std=c11 $(LLHTTP_DEFS) -O1 -g -w -I$(LLHTTP_INC_DIR) $(FUZZ_SAN) \
		-fsanitize=fuzzer-no-link -c $(LLHTTP_SRC_DIR)/$*.c -o $@

$(FUZZ_BUILD)/libairouter.a: $(FUZZ_LIB_OBJ) $(FUZZ_LLHTTP)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/libairouter.a
	@echo "  FUZZ  $@"
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libairouter.a $(LDLIBS)

fuzz-smoke: fuzz
	@tests/fuzz/run.sh smoke $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS) $(FUZZ_NAMES)

fuzz-long: fuzz
	@tests/fuzz/run.sh long $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

# CI (.ci/run) runs test-asan: the fuzz smoke run comes with it.
test-asan: fuzz-smoke

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

clean: fuzz-clean

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BIN:=.d)

-include $(LIB_OBJ:.o=.d) $(TLIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(MOCK_OBJ:.o=.d) $(UNIT_BIN:=.d)
