# tests/e2e/module.mk - `make e2e`: the nested end-to-end tier alone
# (tests/e2e/*.sh; the harness is tests/e2e/lib/nested.sh).  `make test`
# also runs it, and builds the guest kernel (make kernel, cached) before the
# tiers start, so the per-test time limit never has to cover a fresh kernel
# build.
.PHONY: e2e e2e-kernel
e2e: all e2e-kernel
	BUILD=$(BUILD) TIERS=e2e tests/run.sh

e2e-kernel: $(BUILD)/.deps-ok
	$(MAKE) kernel

test: e2e-kernel
