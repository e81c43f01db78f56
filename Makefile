# ferry's build. `make` builds everything; `make demo` and `make test` first
# install what a fresh Debian 12 machine lacks (apt and npm), then build.
# Runs as root (namespaces, netlink, BPF).

SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

# Debian packages the build, the demo and the tests need.
APT_PACKAGES := clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool iproute2 iperf3 ethtool iptables conntrack \
                util-linux make g++ python3 pkg-config \
                golang-go golang-github-appc-cni-dev containernetworking-plugins dpkg-dev

ADDON := build/addon/ferry.node
ADDON_SOURCES := addon/binding.gyp $(wildcard addon/src/*.cc addon/src/*.h)
TS_SOURCES := $(shell find engine plugin -name '*.ts' -not -name '*.test.ts' 2>/dev/null)
TS_STAMP := dist/.built
NPM_STAMP := node_modules/.ferry-installed
APT_STAMP := build/.apt-installed

include bpf/bpf.mk

CNI_FRONTEND := build/cni/ferry

.PHONY: all deps addon ts demo test clean install
all: $(ADDON) bpf $(TS_STAMP) $(CNI_FRONTEND)

# --- dependencies -----------------------------------------------------------
deps: $(APT_STAMP) $(NPM_STAMP)

$(APT_STAMP): Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(@D) && touch $@

# npm 11 runs install scripts only for approved packages (package.json
# allowScripts); raw-socket is rebuilt explicitly if its addon is missing anyway.
# `npm install` honours package-lock.json; this npm's `npm ci` rejects a lock
# file it wrote itself (it records only this platform's optional packages).
$(NPM_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund
	@test -f node_modules/raw-socket/build/Release/raw.node || npm rebuild raw-socket
	@touch $@

# --- build ------------------------------------------------------------------
addon: $(ADDON)
# node-gyp's tree (addon/build) is only a workspace: the module is copied out
# and the tree removed, so the sources stay free of generated files.
$(ADDON): $(ADDON_SOURCES) | $(NPM_STAMP) $(APT_STAMP)
	npx node-gyp rebuild --directory addon
	install -D -m 0755 addon/build/Release/ferry.node $@
	rm -rf addon/build

$(BPF_OBJECTS) $(BPF_BUILD)/vmlinux.h: | $(APT_STAMP)

ts: $(TS_STAMP)
$(TS_STAMP): $(TS_SOURCES) tsconfig.json tsconfig.build.json $(NPM_STAMP)
	rm -rf dist
	npx tsc -p tsconfig.build.json
	@touch $@

# The CNI plugin binary kubelet executes: forwards to the daemon, or runs
# this checkout's TypeScript plugin in-process when no daemon listens.
$(CNI_FRONTEND): plugin/frontend/ferry-cni.c | $(APT_STAMP)
	@mkdir -p $(@D)
	cc -O2 -Wall -Wextra -Werror -DFERRY_PLUGIN_MAIN='"$(CURDIR)/dist/plugin/main.js"' -DFERRY_NODE='"$(shell command -v node)"' -o $@ $<

# --- the README's two commands ------------------------------------------------
demo: deps all
	node dist/engine/cli/ferry.js demo

test: deps all
	npx tsc --noEmit -p .
	npx vitest run --reporter=default --reporter=./test/support/summary-reporter.ts

# --- benches ------------------------------------------------------------------
# `make bench` runs every bench; each prints its tables and writes its raw
# samples to build/bench/. Options go through BENCH_<NAME>_ARGS
# (BENCH_CNI_ARGS, BENCH_DATAPLANE_ARGS, BENCH_MULTINODE_ARGS,
# BENCH_CONN_RATE_ARGS, BENCH_PROG_COST_ARGS, BENCH_PROGRAMMING_ARGS,
# BENCH_SCALE_ARGS), e.g.
#   make bench-cni BENCH_CNI_ARGS='--sequential 50 --modes routed'
#   make bench-dataplane BENCH_DATAPLANE_ARGS='--repeat 5 --iptables legacy'
.PHONY: bench bench-cni bench-dataplane bench-multinode bench-conn-rate bench-prog-cost bench-programming bench-scale
bench: bench-cni bench-dataplane bench-multinode bench-conn-rate bench-prog-cost bench-programming bench-scale

bench-cni: deps all
	node --import tsx bench/cni.ts $(BENCH_CNI_ARGS)

bench-dataplane: deps all
	node --import tsx bench/dataplane.ts $(BENCH_DATAPLANE_ARGS)

bench-multinode: deps all
	node --import tsx bench/multinode.ts $(BENCH_MULTINODE_ARGS)

bench-conn-rate: deps all
	node --import tsx bench/conn-rate.ts $(BENCH_CONN_RATE_ARGS)

bench-prog-cost: deps all
	node --import tsx bench/prog-cost.ts $(BENCH_PROG_COST_ARGS)

bench-programming: deps all
	node --import tsx bench/programming.ts $(BENCH_PROGRAMMING_ARGS)

bench-scale: deps all
	node --import tsx bench/scale.ts $(BENCH_SCALE_ARGS)

# Installs ferry on this node: the runtime under $(PREFIX), the CNI binary in
# $(CNI_BIN_DIR) (it runs $(PREFIX)'s plugin when no daemon listens).
PREFIX ?= /opt/ferry
CNI_BIN_DIR ?= /opt/cni/bin
install: all
	install -d $(DESTDIR)$(PREFIX)/build/addon $(DESTDIR)$(PREFIX)/build/bpf $(DESTDIR)$(PREFIX)/bpf $(DESTDIR)$(CNI_BIN_DIR)
	cp -r dist node_modules package.json $(DESTDIR)$(PREFIX)/
	install -m 0644 $(BPF_OBJECTS) $(DESTDIR)$(PREFIX)/build/bpf/
	install -m 0755 $(ADDON) $(DESTDIR)$(PREFIX)/build/addon/
	cc -O2 -Wall -Wextra -Werror -DFERRY_PLUGIN_MAIN='"$(PREFIX)/dist/plugin/main.js"' -DFERRY_NODE='"$(shell command -v node)"' \
	  -o $(DESTDIR)$(CNI_BIN_DIR)/ferry plugin/frontend/ferry-cni.c

clean: bpf-clean
	rm -rf dist build addon/build
