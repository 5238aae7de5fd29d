# Build, package and test the creativeflow.redis collection.
#
#   make deps        install redis/openssl (apt) and the Python venvs .venv (newest ansible-core, ...)
#                    and .venv-2.16 (oldest supported ansible-core)
#   make build       static release binaries of every module crate
#   make collection  stage, build and install the collection (dist/*.tar.gz,
#                    build/ansible_collections_install)
#   make lint        the ecosystem's checks on the built collection (galaxy-importer, ansible-test
#                    sanity, ansible-lint, antsibull-docs, antsibull-changelog; ansible-core 2.16
#                    and newest), see .ci/lint; run `make collection` first
#   make test        every test: cargo tests, the collection, lint, pytest, the adversarial suite,
#                    the Molecule scenarios and the CI benchmarks, in lanes side by side (below)
#   make reliability the adversarial suite tests/reliability alone (after make collection)
#   make demo        deploy two password-protected redis instances in .demo/ with the role, show their health
#   make demo-stop   stop the demo's instances
#   make bench       every benchmark under bench/ (run.sh each), bench-ssh
#   make bench-ci    the benchmarks make test runs (cluster bootstrap and rebalance, Lua limiters)
#   make test-flavours  the flavours lane alone: the sentinel and cluster scenarios on Debian 13, Redis 8.0 and Valkey 8.1 (root)
#   make bench-ssh   bench/ssh_fast_path/run.sh: the fast path over SSH at 0/5/25 ms (root)
#   make clean       remove build output (keeps .venv and .venv-2.16)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
TARGET := x86_64-unknown-linux-gnu
VENV := $(CURDIR)/.venv
PYBIN := $(VENV)/bin
# Written by .ci/install-deps; `make collection` and `make lint` (re)run it when it is missing or
# older than the script, so they work on a fresh clone by themselves.
DEPS_STAMP := $(VENV)/.creativeflow-deps.stamp

NAMESPACE := creativeflow
NAME := redis
# Read from galaxy.yml, the single place the collection version is written.
VERSION := $(shell sed -n 's/^version:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' galaxy.yml)
STAGE := build/collection/ansible_collections/$(NAMESPACE)/$(NAME)
INSTALL_DIR := build/ansible_collections_install
TARBALL := dist/$(NAMESPACE)-$(NAME)-$(VERSION).tar.gz
# Every module is one binary crate: modules/<name>/ builds the binary <name>.
MODULES := $(patsubst modules/%/Cargo.toml,%,$(wildcard modules/*/Cargo.toml))
# Ansible copies the whole binary to the managed host on every task.
MAX_MODULE_BYTES := 4194304

# Tests, demo and bench use the collection exactly as installed from the tarball.
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(INSTALL_DIR)
export ANSIBLE_FORCE_COLOR := 0
export ANSIBLE_NOCOLOR := 1
test test-rust test-rootfs test-lane-checks test-lane-systemd test-lane-ha test-lane-flavours test-flavours demo demo-stop bench bench-ci bench-ssh: export PATH := $(PYBIN):$(PATH)

.PHONY: help deps build collection lint reliability test test-rust test-rootfs test-lane-checks test-lane-systemd test-lane-ha test-lane-flavours test-flavours demo demo-stop bench bench-ci bench-ssh clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

deps:
	bash .ci/install-deps
	touch "$(DEPS_STAMP)"

$(DEPS_STAMP): .ci/install-deps
	bash .ci/install-deps
	touch "$@"

# Static glibc binaries run on older distributions too. `--target` is explicit so that build
# scripts and proc-macros are not linked statically.
build:
	RUSTFLAGS='-C target-feature=+crt-static' $(CARGO) build --release --target $(TARGET) --workspace --bins

collection: $(DEPS_STAMP) build
	@[[ -n "$(VERSION)" ]] || { echo "collection: cannot read version from galaxy.yml" >&2; exit 1; }
	[[ -n "$(MODULES)" ]] || { echo "collection: no module crates under modules/" >&2; exit 1; }
	rm -rf "$(STAGE)"
	mkdir -p "$(STAGE)/plugins/modules"
	cp -a collection/. "$(STAGE)/"
	cp galaxy.yml LICENSE "$(STAGE)/"
	if [[ -f README.md ]]; then cp README.md "$(STAGE)/README.md"; fi
	[[ -f "$(STAGE)/README.md" ]] || { echo "collection: no README.md (repo root or collection/)" >&2; exit 1; }
	# Roles, with their Jinja2 templates from templates/<role>/.
	if compgen -G 'roles/*' >/dev/null; then
	    mkdir -p "$(STAGE)/roles"
	    cp -a roles/. "$(STAGE)/roles/"
	fi
	for dir in templates/*/; do
	    [[ -d $$dir ]] || continue
	    role="$$(basename "$$dir")"
	    # The systemd units belong to the role that installs them.
	    [[ $$role == systemd ]] && role=redis_server
	    if [[ -d "$(STAGE)/roles/$$role" ]]; then
	        mkdir -p "$(STAGE)/roles/$$role/templates"
	        cp -a "$$dir." "$(STAGE)/roles/$$role/templates/"
	    else
	        echo "collection: warning: templates/$$role/ has no role roles/$$role/; skipped" >&2
	    fi
	done
	if [[ -d lua ]] && [[ -n "$$(ls -A lua)" ]]; then
	    mkdir -p "$(STAGE)/files/lua"
	    cp -a lua/. "$(STAGE)/files/lua/"
	fi
	# Each binary needs its doc stub and each doc stub its binary.
	status=0
	for name in $(MODULES); do
	    [[ -f "collection/plugins/modules/$$name.py" ]] ||
	        { echo "collection: module $$name has no doc stub collection/plugins/modules/$$name.py" >&2; status=1; }
	done
	for stub in collection/plugins/modules/*.py; do
	    [[ -f $$stub ]] || continue
	    name="$$(basename "$$stub" .py)"
	    [[ -f "modules/$$name/Cargo.toml" ]] ||
	        { echo "collection: doc stub $$stub has no module crate modules/$$name/" >&2; status=1; }
	done
	[[ $$status -eq 0 ]] || exit 1
	# ansible-test sanity ignore files, tests/sanity/ignore-<X.Y>.txt, one per supported
	# ansible-core line (2.16 up to the newest in .venv, at least 2.21; ansible-test reads the
	# file of its own version). They hold one entry per module, for the one check that cannot
	# apply to this collection: validate-modules:missing-gplv3-license wants a GPLv3 header in
	# every module file, and the collection is MIT (LICENSE). Nothing else is ignored. The
	# ELF binaries need no `validate-modules!skip`: validate-modules does not test the
	# symlinks plugins/modules/<name>, only the doc stubs <name>.py. Written here from the doc
	# stubs, so that a new module gets its entry. And one per Lua library in files/lua/: its first
	# line `#!lua name=<library>` is the header FUNCTION LOAD requires, not an interpreter line,
	# which the shebang check cannot tell apart.
	mkdir -p "$(STAGE)/tests/sanity"
	newest="$$($(PYBIN)/python -c 'import ansible.release as r; print(r.__version__.split(".")[1])')"
	for (( minor = 16; minor <= (newest > 21 ? newest : 21); minor++ )); do
	    for stub in collection/plugins/modules/*.py; do
	        echo "plugins/modules/$$(basename "$$stub") validate-modules:missing-gplv3-license"
	    done >"$(STAGE)/tests/sanity/ignore-2.$$minor.txt"
	    for lib in "$(STAGE)"/files/lua/*.lua; do
	        [[ -f $$lib ]] && head -c 6 "$$lib" | grep -q '^#!lua ' || continue
	        echo "files/lua/$$(basename "$$lib") shebang"
	    done >>"$(STAGE)/tests/sanity/ignore-2.$$minor.txt"
	done
	# The binary goes to libexec/<name>, and plugins/modules/<name> is a relative symlink to it.
	# Why not the file itself: with both plugins/modules/<name> (ELF) and <name>.py (doc stub) in
	# one directory, `ansible-doc -l` keeps whichever os.listdir() returns last (ansible-core
	# 2.21.5 plugins/list.py), and when that is the ELF file it drops the module with "has a
	# documentation formatting error: 'utf-8' codec can't decode" (cli/doc.py never clears that
	# error after reading the stub). listdir order is the filesystem's hash order, so it differs
	# per name and per machine. The lister skips symlinks, so it always picks the .py stub, while
	# running a task resolves the exact name, follows the link and ships the binary itself
	# (checked: "PUT .../libexec/redis_health TO .../AnsiballZ_redis_health").
	# Why libexec/ and not bin/: ansible-test treats a collection's top-level bin/ as Python
	# scripts, so its compile, pep8 and pylint sanity tests crash or fail on the ELF files there.
	# libexec/ has no meaning to ansible-test, Galaxy or ansible-lint.
	mkdir -p "$(STAGE)/libexec"
	for name in $(MODULES); do
	    bin="target/$(TARGET)/release/$$name"
	    [[ -f $$bin ]] || { echo "collection: binary $$bin not built" >&2; exit 1; }
	    install -m 0755 "$$bin" "$(STAGE)/libexec/$$name"
	    ln -s "../../libexec/$$name" "$(STAGE)/plugins/modules/$$name"
	    size="$$(stat -c %s "$$bin")"
	    echo "collection: $$name: $$size bytes"
	    if (( size > $(MAX_MODULE_BYTES) )); then
	        echo "collection: $$name is $$size bytes, over the $(MAX_MODULE_BYTES)-byte limit" >&2
	        status=1
	    fi
	done
	[[ $$status -eq 0 ]] || exit 1
	$(PYBIN)/ansible-galaxy collection build "$(STAGE)" --output-path dist/ --force
	rm -rf "$(INSTALL_DIR)/ansible_collections/$(NAMESPACE)/$(NAME)"
	$(PYBIN)/ansible-galaxy collection install "$(TARBALL)" -p "$(INSTALL_DIR)" --force

# make test in lanes that run side by side, each lane's output printed when the lane ends
# (make -O): on 2 cores the container scenarios mostly wait (boots, failover timeouts, gossip), so
# they run beside the CPU-bound checks. First the Rust tests, beside the build of the test-host
# rootfs (debootstrap mostly waits on the mirror); then the collection; then four lanes:
#   checks:   lint, pytest
#   systemd:  molecule systemd, default, ssh and migrate, then the CI benchmarks
#   ha:       molecule sentinel, then cluster (Debian 12, Redis 7.0), then the adversarial suite,
#             then sentinel_redis8 (Debian 13)
#   flavours: the same on Debian 13: cluster_valkey, sentinel_valkey and cluster_redis8 (without
#             the scaling under writes)
# The four Debian 13 scenarios run without molecule's syntax and idempotence stages (verify.yml
# re-runs the role and requires changed=0): in full, as two more lanes, they took make test past
# an hour on 2 cores (CI stops at 90 min). sentinel_redis8 is in the ha lane, which ends first.
# Every step prints its time (.ci/step, also in build/steps/times). The ssh scenario creates a
# user, a sudoers entry and its own sshd, and the systemd, sentinel and cluster scenarios boot
# Debian containers (tests/hosts/): they run only as root (CI is root); otherwise make test says
# it skipped them.
IS_ROOT := $(filter 0,$(shell id -u))
STEP := bash .ci/step
test: deps
	rm -f build/steps/times
	$(MAKE) -j2 -O test-rust test-rootfs
	$(STEP) collection $(MAKE) collection
	$(MAKE) -j4 -O -k test-lane-checks test-lane-systemd test-lane-ha test-lane-flavours
	@echo "make test: every step passed (name, exit status, seconds):"; cat build/steps/times

test-rust:
	$(STEP) cargo-test $(CARGO) test --workspace

test-rootfs:
	$(if $(IS_ROOT),$(STEP) rootfs $(PYBIN)/python tests/hosts/testhosts.py build-rootfs && $(STEP) servers $(PYBIN)/python tests/hosts/servers.py build,echo "make test: SKIPPED the test-host rootfs and the Redis 8 / Valkey servers (needs root)")

test-lane-checks:
	$(STEP) lint $(MAKE) lint
	$(STEP) pytest $(PYBIN)/pytest -q tests/ --ignore=tests/reliability

test-lane-systemd:
	$(if $(IS_ROOT),$(STEP) molecule-systemd $(PYBIN)/molecule test -s systemd,echo "make test: SKIPPED molecule test -s systemd (needs root: it boots systemd-nspawn containers)")
	$(STEP) molecule-default $(PYBIN)/molecule test -s default
	$(if $(IS_ROOT),$(STEP) molecule-ssh $(PYBIN)/molecule test -s ssh,echo "make test: SKIPPED molecule test -s ssh (needs root: it creates a user, sudoers and an sshd)")
	$(call molecule_step,migrate)
	$(STEP) bench-ci $(MAKE) bench-ci

# A container scenario as one step, or a line saying it was skipped (not root).
molecule_step = $(if $(IS_ROOT),$(STEP) molecule-$(1) $(PYBIN)/molecule test -s $(1),echo "make test: SKIPPED molecule test -s $(1) (needs root: it boots systemd-nspawn containers)")

# Redis 7.0 on Debian 12; the flavours lane: the same scenarios on Debian 13 with Valkey 8.1 and
# Redis 8.0 (it starts with its cluster while the ha lane runs its sentinel, so that two clusters
# do not start at once).
test-flavours: collection
	$(MAKE) test-lane-flavours
	$(call molecule_step,sentinel_redis8)

test-lane-ha:
	$(call molecule_step,sentinel)
	$(call molecule_step,cluster)
	$(STEP) reliability $(MAKE) reliability
	$(call molecule_step,sentinel_redis8)

test-lane-flavours:
	$(call molecule_step,cluster_valkey)
	$(call molecule_step,sentinel_valkey)
	$(call molecule_step,cluster_redis8)

# The adversarial suite of issue 8 (tests/reliability): bad input, injection, secret audit,
# idempotence, concurrency, SIGKILL during writes, property tests; prints its case counts. Uses
# the installed collection: run `make collection` first (make test does).
reliability: $(DEPS_STAMP)
	$(PYBIN)/pytest -q tests/reliability

# Prints each check and how long it took (.ci/lint).
lint: $(DEPS_STAMP)
	bash .ci/lint "$(TARBALL)" "$(STAGE)"

demo: deps collection
	bash docs/demo/demo.sh

demo-stop:
	bash docs/demo/demo.sh stop

bench:
	bash bench/module_overhead/run.sh
	bash bench/cluster_bootstrap/run.sh
	bash bench/cluster_rebalance/run.sh
	bash bench/sentinel_failover/run.sh
	bash bench/lua_rate_limiter/run.sh
	$(if $(filter 0,$(shell id -u)),$(MAKE) bench-ssh,echo "make bench: SKIPPED bench-ssh (needs root: it starts an sshd for a throwaway user)")

# The benchmarks that CI runs (make test): each prints its ratios and never fails on timing.
# Fewer trials than make bench, to keep make test within its time.
bench-ci:
	BENCH_N_CLUSTER=3 bash bench/cluster_bootstrap/run.sh
	BENCH_N_REBALANCE=1 bash bench/cluster_rebalance/run.sh
	bash bench/lua_rate_limiter/run.sh

# Not part of make test: timings are reported, never asserted.
bench-ssh:
	bash bench/ssh_fast_path/run.sh

clean:
	rm -rf build dist .pytest_cache
	$(CARGO) clean
