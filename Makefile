# podnet — see README.md. Every target that touches the system needs root.
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build run test unit e2e bench plugin plugin-install install uninstall lint clean

all: build

build: $(BIN)/podnetd $(BIN)/podnetctl $(BIN)/podnet-cni $(BIN)/netcheck $(BIN)/fakehosts $(BIN)/cnitool

$(BIN)/%: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

# netcheck is a test tool baked into the test image (scripts/busybox-image.sh).
$(BIN)/netcheck: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./test/netcheck

# fakehosts stands in for many podnetd hosts in etcd (e2e scale tests).
$(BIN)/fakehosts: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./test/fakehosts

# cnitool (the CNI project's own test client, from the module podnet
# already requires) drives the CNI plugin in the e2e tests.
$(BIN)/cnitool: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ github.com/containernetworking/cni/cnitool

FORCE:

# Install what is missing, start dockerd if none runs, run podnetd in the
# foreground with an embedded etcd, registered with the local dockerd as
# "podnet". Ctrl-C stops it (containers keep their network).
run:
	scripts/deps.sh
	scripts/dockerd.sh ensure
	$(MAKE) build
	exec $(BIN)/podnetd $(PODNETD_FLAGS)

# Every test tier: unit, kernel (root, throwaway namespaces), end-to-end
# against real dockerd + etcd, multi-host on namespace hosts.
test:
	scripts/test.sh

unit:
	$(GO) test ./...

e2e: build
	$(GO) test -tags e2e -v -count=1 -timeout 40m ./e2e/

bench: build
	scripts/bench.sh

# Managed (v2) plugin: build/plugin/{config.json,rootfs}; install it as
# podnet:latest with `make plugin-install`.
plugin: build
	scripts/build-plugin.sh build/plugin

plugin-install: plugin
	scripts/build-plugin.sh --install build/plugin

# Install podnetd, podnetctl, the CNI plugin (as podnet in CNI_BIN_DIR,
# default /opt/cni/bin), podnetd.service, /etc/default/podnet,
# podnetctl's completions and the Prometheus rules in share/podnet
# (PREFIX=/usr/local, DESTDIR= for staging; see scripts/install.sh);
# uninstall removes them again.
PREFIX ?= /usr/local
export PREFIX DESTDIR BINDIR DATADIR SYSCONFDIR UNITDIR CNI_BIN_DIR

install: build
	scripts/install.sh install

uninstall:
	scripts/install.sh uninstall

lint:
	$(GO) vet ./... && $(GO) vet -tags e2e ./e2e/
	$(GO) tool staticcheck ./... && $(GO) tool staticcheck -tags e2e ./e2e/
	command -v shellcheck >/dev/null && shellcheck scripts/*.sh scripts/bench/*.sh .ci/run || true

clean:
	rm -rf $(BIN) build
