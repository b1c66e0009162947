# kvmbox - top-level build.
#
# Every folder in LIB_DIRS builds into $(BUILD)/lib<folder>.a from all of its
# .c files (recursively), minus those a folder lists in <folder>_EXCLUDE in its
# own module.mk.  The binary $(BUILD)/kvmbox links them all.  Folders add their
# own targets (tiny guests, kvmbox-init, kernel) in their module.mk, so no one
# edits this file to add a source.
#
#   make            build/kvmbox (and build/kvmbox-init)
#   make SAN=1      the same with ASan+UBSan into $(BUILD)-asan/
#   BUILD=DIR       build somewhere else (default build/)
#   make test       every test tier; ends with "N passed, N failed, N skipped"
#   make fuzz       libFuzzer targets into build-fuzz/ (clang)
#   make deps       install Debian packages the build and tests need
#   make kernel     guest kernel from Debian's linux-source-6.1 (cached)
#   make bench-X    benchmark X (vmm, fs, net, proxy, console, boot, vm)

.DEFAULT_GOAL := all
BUILD ?= build
CC ?= gcc
SAN ?= 0
FUZZ ?= 0

CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. \
	-fno-strict-aliasing -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS := $(EXTRA_LDFLAGS)
# kvmbox links only what every command needs.  libcurl and libarchive are
# opened by the commands that use them (common/dl.h); OpenSSL and json-c on
# their first call, through trampolines scripts/lazylib.sh generates for
# the functions the code calls.  Tests and fuzzers link them all directly
# (and libarchive, to write tarballs).
KVMBOX_LDLIBS := -luring -lfdt -lseccomp -lpthread
LAZY_LIBS := ssl crypto json-c
LDLIBS := $(KVMBOX_LDLIBS) $(addprefix -l,$(LAZY_LIBS))

ifeq ($(SAN),1)
BUILD := $(BUILD)-asan
# KVMBOX_FAULT_INJECTION: test-only triggers (cage/seccomp.c)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-DKVMBOX_FAULT_INJECTION
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(FUZZ),1)
BUILD := $(BUILD)-fuzz
CC := clang
CFLAGS += -Wno-unknown-warning-option \
	-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DKVMBOX_FUZZ=1
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

LIB_DIRS := common cage boot devices net fs9p proxy broker guest launch vmm

# Per-folder fragments: <dir>_EXCLUDE, extra targets, bench rules.
include $(sort $(wildcard */module.mk */*/module.mk))

define lib_template
$(1)_SRCS := $$(filter-out $$($(1)_EXCLUDE),$$(shell find $(1) -name '*.c' -not -path '*/tests/*' 2>/dev/null | sort))
$(1)_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRCS))
$(BUILD)/lib$(1).a: $$($(1)_OBJS)
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^
ALL_OBJS += $$($(1)_OBJS)
endef
$(foreach d,$(LIB_DIRS),$(eval $(call lib_template,$(d))))

LIBS := $(foreach d,$(LIB_DIRS),$(BUILD)/lib$(d).a)
LINK_LIBS := -Wl,--start-group $(LIBS) -Wl,--end-group $(KVMBOX_LDLIBS)

# Test-only helpers shared by unit tests and fuzzers (e.g. the virtio
# driver-side harness that plays the guest): tests/harness/*.c.
HARNESS_SRCS := $(filter-out tests/harness/cmocka_filter.c,$(sort $(wildcard tests/harness/*.c)))
HARNESS_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(HARNESS_SRCS))
$(BUILD)/libharness.a: $(HARNESS_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
TEST_LINK_LIBS := -Wl,--start-group $(BUILD)/libharness.a $(LIBS) -Wl,--end-group $(LDLIBS) -larchive

.PHONY: all test fuzz deps kernel clean e2e
all: $(BUILD)/kvmbox $(EXTRA_ALL)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/lazylibs.S: $(BUILD)/obj/vmm/cli/main.o $(LIBS) scripts/lazylib.sh
	scripts/lazylib.sh $@ $(CC) $(LAZY_LIBS) -- $(BUILD)/obj/vmm/cli/main.o $(LIBS)
$(BUILD)/obj/lazylibs.o: $(BUILD)/lazylibs.S
	$(CC) -c -o $@ $<
$(BUILD)/kvmbox: $(BUILD)/obj/vmm/cli/main.o $(BUILD)/obj/lazylibs.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/obj/vmm/cli/main.o $(BUILD)/obj/lazylibs.o $(LINK_LIBS)

# Unit and device-harness tests: every tests/unit/*.c is one cmocka program.
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
# CASES=PATTERN picks cases (tests/harness/cmocka_filter.c, linked whole).
$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBS) $(BUILD)/libharness.a $(BUILD)/obj/tests/harness/cmocka_filter.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/tests/harness/cmocka_filter.o $(TEST_LINK_LIBS) -lcmocka

# Fuzz targets: every tests/fuzz/*.c defines LLVMFuzzerTestOneInput.
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%,$(FUZZ_SRCS))
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c $(LIBS) $(BUILD)/libharness.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_LINK_LIBS)

unit-bins: $(UNIT_BINS)
fuzz-bins: $(FUZZ_BINS)

fuzz:
	$(MAKE) FUZZ=1 fuzz-bins

deps:
	scripts/deps.sh

# make test: build everything (plain and sanitized), then every tier.
test: $(BUILD)/.deps-ok
	$(MAKE) all unit-bins
	$(MAKE) SAN=1 all unit-bins
	$(MAKE) FUZZ=1 fuzz-bins
	BUILD=$(BUILD) tests/run.sh

$(BUILD)/.deps-ok: scripts/deps.sh $(wildcard scripts/deps.d/*.list)
	scripts/deps.sh
	@mkdir -p $(@D) && touch $@

bench-%: all
	tests/bench/bench-$*.sh

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz

-include $(ALL_OBJS:.o=.d) $(HARNESS_OBJS:.o=.d) $(UNIT_BINS:=.d) $(FUZZ_BINS:=.d)
