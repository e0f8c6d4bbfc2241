# pyspyc - a sampling profiler for CPython.
#
#   make            build ./pyspyc (objects under build/)
#   make test       install missing deps, build, run every test
#   make demo       install missing deps, build, profile the bundled web app
#   make bench      install missing deps, build, run the benchmarks -> BENCHMARKS.md
#                   (BENCH_ARGS=--quick for a short run; see scripts/bench/bench.py --help)
#   make install    PREFIX=/usr/local DESTDIR=  (binary, man page, bash completion,
#                   the agent's systemd unit, and its sample configuration
#                   when there is none yet)
#   make uninstall  the same variables: removes what install put there but the
#                   agent's configuration, which may have been edited
#   make SAN=1      AddressSanitizer + UndefinedBehaviorSanitizer build
#   make fuzz       build the libFuzzer targets (clang) and run each for
#                   FUZZ_SECONDS (300); crash inputs stay in build-fuzz/
#   make V=1        show full commands

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
# Where bash-completion looks for a command's completion when first needed.
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
# systemd reads units from /usr/local/lib/systemd/system too.
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DESTDIR ?=

CC      ?= cc
BUILD   ?= build
VERSION := 0.1.0

# The library needs libelf, zlib, libbpf and libinih (the agent's config); only
# the commands need ncurses (top) and libmicrohttpd (the agent's HTTP).
LIB_PKGS := libelf zlib libbpf inih jansson
CMD_PKGS := ncursesw libmicrohttpd
TEST_PKGS := libxml-2.0
PKG_CFLAGS := $(shell pkg-config --cflags $(LIB_PKGS) $(CMD_PKGS) 2>/dev/null)
LIB_LIBS   := $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null) -lpthread -lm
CMD_LIBS   := $(shell pkg-config --libs $(CMD_PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wimplicit-fallthrough -Wformat=2 -Wvla -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CPPFLAGS += -Iinclude -Ibpf -D_GNU_SOURCE -DPYSPYC_VERSION='"$(VERSION)"'
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS  += $(LIB_LIBS)

ifeq ($(SAN),1)
BUILD   := build-san
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifneq ($(V),1)
Q := @
E := @echo
else
Q :=
E := @true
endif

# src/ is grouped by layer (docs/ARCHITECTURE.md).  The library is every
# layer but the commands: unit tests, fuzzers and benchmarks link it alone.
SRCS      := $(sort $(filter-out %.bpf.c,$(wildcard src/*.c src/*/*.c)))
CMD_SRCS  := src/main.c $(sort $(wildcard src/cmd/*.c))
LIB_SRCS  := $(filter-out $(CMD_SRCS),$(SRCS))
OBJS      := $(SRCS:src/%.c=$(BUILD)/src/%.o)
CMD_OBJS  := $(CMD_SRCS:src/%.c=$(BUILD)/src/%.o)
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/src/%.o)
LIB       := $(BUILD)/libpyspyc.a
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
OUT_COST  := $(BUILD)/bench/out_cost
RUSAGE_RUN := $(BUILD)/bench/rusage_run
FLOOR     := $(BUILD)/bench/floor
WINDOW_SOAK := $(BUILD)/bench/window_soak

# Fuzzers: clang, the library compiled again with coverage and sanitizers
# into build-fuzz/, one binary per tests/fuzz/fuzz_*.c into $(BUILD)/fuzz/.
FUZZ_CC    ?= clang
FUZZ_OBJ   := build-fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 $(WARN) -O1 -g $(PKG_CFLAGS) -MMD -MP \
               -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_OBJ)/src/%.o) $(FUZZ_OBJ)/tests/fuzz/image.o
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_MAIN_OBJS := $(FUZZ_BINS:$(BUILD)/fuzz/%=$(FUZZ_OBJ)/tests/fuzz/%.o)
FUZZ_SECONDS ?= 300

ifeq ($(SAN),1)
PROG := $(BUILD)/pyspyc
else
PROG := pyspyc
endif

.DELETE_ON_ERROR:
.PHONY: all test unit demo bench install uninstall clean deps fuzz fuzzers

all: $(PROG)

# Its mode whatever the umask: test_install's make (umask 077) relinks it
# when it is out of date, while other tests run it as nobody.
$(PROG): $(CMD_OBJS) $(LIB)
	$(E) "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CMD_OBJS) $(LIB) $(CMD_LIBS) $(LDLIBS)
	$(Q)chmod 0755 $@

$(LIB): $(LIB_OBJS)
	$(E) "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(E) "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

# eBPF programs: bpf/NAME.bpf.c -> an object for the kernel -> a skeleton
# header (bpftool) that embeds it, included by the C file that loads it.
BPF_CLANG  ?= clang
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
              -I/usr/include/$(shell $(CC) -dumpmachine 2>/dev/null) -Ibpf
BPF_SKELS  := $(BUILD)/bpf/runwatch.skel.h $(BUILD)/bpf/runwatch.lskel.h

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*_abi.h)
	@mkdir -p $(dir $@)
	$(E) "  BPF     $<"
	$(Q)$(BPF_CLANG) $(BPF_CFLAGS) -c -o $@ $<
	$(Q)llvm-strip -g $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(E) "  SKEL    $@"
	$(Q)bpftool gen skeleton $< name $*_bpf > $@

# The light skeleton (-L) of the same object, tried first (runwatch.c).
$(BUILD)/bpf/%.lskel.h: $(BUILD)/bpf/%.bpf.o
	$(E) "  LSKEL   $@"
	$(Q)bpftool gen skeleton -L $< name $*_lskel > $@

$(BUILD)/src/proc/runwatch.o $(FUZZ_OBJ)/src/proc/runwatch.o: $(BPF_SKELS)
$(BUILD)/src/sample/backend_bpf.o $(FUZZ_OBJ)/src/sample/backend_bpf.o: $(BUILD)/bpf/pyspyc.skel.h
$(BUILD)/src/sample/backend_bpf.o $(FUZZ_OBJ)/src/sample/backend_bpf.o: CPPFLAGS += -I$(BUILD)/bpf
$(BUILD)/src/proc/runwatch.o $(FUZZ_OBJ)/src/proc/runwatch.o: CPPFLAGS += -I$(BUILD)/bpf -Ibpf

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(E) "  TEST-CC $<"
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit -Ibpf $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null) -lcmocka

unit: $(TEST_BINS)

$(FUZZ_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  FUZZ-CC $<"
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/%: $(FUZZ_OBJ)/tests/fuzz/%.o $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(E) "  FUZZ-LD $@"
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

fuzzers: $(FUZZ_BINS)
.SECONDARY: $(FUZZ_MAIN_OBJS) $(FUZZ_LIB_OBJS)

fuzz: fuzzers
	$(Q)./tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_OBJ) $(FUZZ_BINS)

$(OUT_COST): scripts/bench/out_cost.c $(LIB)
	@mkdir -p $(dir $@)
	$(E) "  BENCH-CC $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(WINDOW_SOAK): scripts/bench/window_soak.c $(LIB)
	@mkdir -p $(dir $@)
	$(E) "  BENCH-CC $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(RUSAGE_RUN): scripts/bench/rusage_run.c
	@mkdir -p $(dir $@)
	$(E) "  BENCH-CC $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(FLOOR): scripts/bench/floor.c
	@mkdir -p $(dir $@)
	$(E) "  BENCH-CC $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

deps:
	$(Q)./scripts/install-deps.sh

# `make test` and `make demo` install what is missing first, then build.
# The fuzzers run briefly in the normal build's tests (they are sanitized
# builds already, so not again under SAN=1).
test: deps
	$(Q)$(MAKE) --no-print-directory all unit $(if $(filter 1,$(SAN)),,fuzzers)
	$(Q)PYSPYC=$(abspath $(PROG)) BUILD=$(BUILD) FUZZ_OBJ=$(FUZZ_OBJ) \
		FUZZ_BINS="$(if $(filter 1,$(SAN)),,$(FUZZ_BINS))" ./tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)PYSPYC=$(abspath $(PROG)) ./scripts/demo.sh

# The benchmarks print a table and write BENCHMARKS.md (generated: never
# edit it by hand).  About a quarter of an hour; BENCH_ARGS=--quick for a
# short run.
bench: deps
	$(Q)$(MAKE) --no-print-directory all $(OUT_COST) $(RUSAGE_RUN) $(FLOOR) $(WINDOW_SOAK)
	$(Q)/usr/bin/python3 scripts/bench/bench.py --pyspyc $(abspath $(PROG)) \
		--out-cost $(abspath $(OUT_COST)) --rusage-run $(abspath $(RUSAGE_RUN)) \
		--floor $(abspath $(FLOOR)) --window-soak $(abspath $(WINDOW_SOAK)) $(BENCH_ARGS)

# The unit is made again on every install: it names BINDIR and SYSCONFDIR,
# which each install may set otherwise.  The configuration is installed
# only where there is none: an admin's edits are never overwritten.
AGENT_CONF = $(DESTDIR)$(SYSCONFDIR)/pyspyc/agent.conf

install: $(PROG)
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(UNITDIR) $(AGENT_CONF).d
	install -m 0755 $(PROG) $(DESTDIR)$(BINDIR)/pyspyc
	install -m 0644 man/pyspyc.1 $(DESTDIR)$(MANDIR)/man1/pyspyc.1
	install -m 0644 scripts/pyspyc.bash-completion $(DESTDIR)$(BASHCOMPDIR)/pyspyc
	@mkdir -p $(BUILD)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		dist/pyspyc-agent.service.in > $(BUILD)/pyspyc-agent.service
	install -m 0644 $(BUILD)/pyspyc-agent.service $(DESTDIR)$(UNITDIR)/pyspyc-agent.service
	@if [ -e $(AGENT_CONF) ] || [ -L $(AGENT_CONF) ]; then \
		echo "$(AGENT_CONF) exists: kept"; \
	else \
		echo "install -m 0644 dist/agent.conf $(AGENT_CONF)"; \
		install -m 0644 dist/agent.conf $(AGENT_CONF); \
	fi

# Directories are left: they are shared with other packages.  The agent's
# configuration (and agent.conf.d) is left too: it may have been edited.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pyspyc $(DESTDIR)$(MANDIR)/man1/pyspyc.1 \
		$(DESTDIR)$(BASHCOMPDIR)/pyspyc $(DESTDIR)$(UNITDIR)/pyspyc-agent.service

clean:
	rm -rf build build-san build-fuzz pyspyc

-include $(OBJS:.o=.d) $(OUT_COST).d $(RUSAGE_RUN).d $(WINDOW_SOAK).d $(FUZZ_LIB_OBJS:.o=.d) \
	$(FUZZ_MAIN_OBJS:.o=.d)
