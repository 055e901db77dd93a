# ekycfs build. `make` builds build/ekycfs; `make test` runs every test tier.
# FUSE-free core (every fs/*.c but the FUSE edge and main) is a static library
# shared by the daemon and the unit tests.

CC       ?= cc
PKGS     := fuse3 libsodium inih
WARN     := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-declarations \
            -Wwrite-strings -Wvla -Wshadow -Wformat=2
# For the daemon's own code: a request's stack must stay well inside what
# crypto_wipe_stack() clears after it (include/crypto.h); big buffers go on
# the heap.
FS_WARN  := -Wframe-larger-than=16384
CFLAGS   ?= -O2 -g
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DFUSE_USE_VERSION=314
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -MMD -MP $(shell pkg-config --cflags $(PKGS))
# libgcc_s loaded at start: glibc's pthread_cancel (libfuse stops its
# workers with it) would otherwise dlopen it then, and fail if the daemon is
# out of descriptors at that moment.
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lpthread \
            -Wl,--push-state,--no-as-needed -lgcc_s -Wl,--pop-state
# Symbols bound at start (and the GOT read-only after): a lazy binding
# saves the vector registers, which may hold a request's plaintext, on the
# stack of whichever thread first calls the function.
LDFLAGS  += -Wl,-z,now -Wl,-z,relro

ifdef SANITIZE
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZE)
BUILD      ?= build-san
endif
BUILD    ?= build

ifeq ($(V),1)
Q :=
else
Q := @
endif

EDGE_SRC := fs/fuse_io.c fs/fuse_ops.c fs/main.c
CORE_SRC := $(filter-out $(EDGE_SRC),$(wildcard fs/*.c))
CORE_OBJ := $(CORE_SRC:fs/%.c=$(BUILD)/obj/%.o)
EDGE_OBJ := $(EDGE_SRC:fs/%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: all deps test unit-test unit-test-san mount-test run stop clean format check-format install uninstall
all: $(BUILD)/ekycfs $(TOOL_BIN)

deps:
	$(Q)scripts/install-deps.sh

$(BUILD)/obj/%.o: fs/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(FS_WARN) -c -o $@ $<

$(BUILD)/libekycfs.a: $(CORE_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ekycfs: $(EDGE_OBJ) $(BUILD)/libekycfs.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libekycfs.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libekycfs.a \
		$(LDLIBS) -lcriterion

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -lpthread

# Criterion runs each suite; its summary line ends the unit tier. A leak
# that LeakSanitizer reports when a test's process exits does not fail the
# test in Criterion's eyes, so the suite's output is searched for one.
unit-test: $(UNIT_BIN)
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
		rc=0; $$t --jobs 2 >$$t.out 2>&1 || rc=$$?; cat $$t.out; \
		if [ $$rc -ne 0 ]; then exit $$rc; fi; \
		if grep -q "ERROR: LeakSanitizer" $$t.out; then \
			echo "$$t: LeakSanitizer reported a leak (above)"; exit 1; fi; \
	done

unit-test-san:
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined unit-test

mount-test: all
	$(Q)tests/mount/run.sh $(BUILD)

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory unit-test
	$(Q)$(MAKE) --no-print-directory unit-test-san
	$(Q)$(MAKE) --no-print-directory mount-test

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh start

stop:
	$(Q)scripts/demo.sh stop

format:
	clang-format -i fs/*.c include/*.h tests/unit/*.c tests/tools/*.c

check-format:
	clang-format --dry-run --Werror fs/*.c include/*.h tests/unit/*.c tests/tools/*.c

clean:
	rm -rf build build-san

-include $(CORE_OBJ:.o=.d) $(EDGE_OBJ:.o=.d) $(UNIT_BIN:=.d)

# ---- install ----------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=]: the daemon, the mount(8) helper
# (in /sbin, the only place mount looks), the systemd template unit, the man
# pages and, unless one is there already, the example config. The helper and
# the unit get the installed binary's path. `make uninstall` removes the same
# files; the config only while it still equals etc/ekycfs.conf, and
# SYSCONFDIR/ekycfs only once it is empty. See docs/deployment.md.
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= /sbin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANDIR     ?= $(PREFIX)/share/man
INSTALL    ?= install
SUBST      := sed -e 's|/usr/local/bin/ekycfs|$(BINDIR)/ekycfs|g' \
                  -e 's|/etc/ekycfs/|$(SYSCONFDIR)/ekycfs/|g'
CONF       := $(DESTDIR)$(SYSCONFDIR)/ekycfs/ekycfs.conf

# install_subst SRC DEST MODE: SRC through $(SUBST) into DEST, replacing
# (never writing through) whatever DEST was.
install_subst = $(SUBST) $(1) >$(2).tmp && chmod $(3) $(2).tmp && mv -f $(2).tmp $(2)

install: $(BUILD)/ekycfs
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/ekycfs
	$(Q)$(INSTALL) -m 0755 $(BUILD)/ekycfs $(DESTDIR)$(BINDIR)/ekycfs
	$(Q)$(call install_subst,scripts/mount.fuse.ekycfs,$(DESTDIR)$(SBINDIR)/mount.fuse.ekycfs,0755)
	$(Q)$(call install_subst,etc/ekycfs@.service,$(DESTDIR)$(UNITDIR)/ekycfs@.service,0644)
	$(Q)$(INSTALL) -m 0644 man/ekycfs.8 $(DESTDIR)$(MANDIR)/man8/ekycfs.8
	$(Q)$(INSTALL) -m 0644 man/ekycfs.conf.5 $(DESTDIR)$(MANDIR)/man5/ekycfs.conf.5
	$(Q)if [ -e $(CONF) ] || [ -L $(CONF) ]; then \
		echo "  keeping existing $(CONF)"; \
	else \
		$(INSTALL) -m 0644 etc/ekycfs.conf $(CONF); \
	fi

uninstall:
	$(Q)rm -f $(DESTDIR)$(BINDIR)/ekycfs $(DESTDIR)$(SBINDIR)/mount.fuse.ekycfs \
		$(DESTDIR)$(UNITDIR)/ekycfs@.service \
		$(DESTDIR)$(MANDIR)/man8/ekycfs.8 $(DESTDIR)$(MANDIR)/man5/ekycfs.conf.5
	$(Q)if cmp -s etc/ekycfs.conf $(CONF); then rm -f $(CONF); \
	elif [ -e $(CONF) ]; then echo "  keeping $(CONF) (changed since install)"; fi
	$(Q)rmdir $(DESTDIR)$(SYSCONFDIR)/ekycfs 2>/dev/null || true
