#!/usr/bin/env bash
# `make test`: every tier, in order of cost.
#   1. vet and staticcheck
#   2. unit tests (no root) and kernel tests (root, throwaway namespaces)
#   3. the kernel tests this kernel cannot run (ipvlan, 802.1q VLANs,
#      WireGuard), on Debian's kernel in a QEMU guest (scripts/vm.sh
#      kernel-tests)
#   4. end-to-end and multi-host tests against real dockerd + etcd on
#      namespace hosts (scripts/lab.sh), build tag e2e, which include
#      dockerd + podnetd with ipvlan in the QEMU guest (scripts/vm.sh e2e)
#      and, at the same time in a second guest, three podnet hosts with
#      WireGuard encryption (scripts/vm.sh wireguard-e2e)
# Env: GO_TEST_FLAGS (extra flags for go test), E2E_RUN (-run filter for e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

if [[ $(id -u) -ne 0 ]]; then
	echo "make test needs root (network namespaces, dockerd, netfilter): run sudo make test" >&2
	exit 1
fi
scripts/deps.sh
# A previous run killed half-way may have left a lab behind.
scripts/lab.sh down >/dev/null 2>&1 || true

step() { printf '\n=== %s\n' "$*"; }

step "build"
make --no-print-directory build

step "vet"
go vet ./...
go vet -tags e2e ./e2e/

# staticcheck is pinned in go.mod (a tool dependency): `go tool` builds
# that version, so every machine checks with the same rules. Dead code
# fails here.
step "staticcheck"
go tool staticcheck ./...
go tool staticcheck -tags e2e ./e2e/

step "unit and kernel tests"
# shellcheck disable=SC2086
go test -count=1 -timeout 20m ${GO_TEST_FLAGS:-} ./...

step "ipvlan, VLAN and WireGuard kernel tests on Debian's kernel (QEMU guest)"
scripts/vm.sh kernel-tests

step "end-to-end and multi-host tests (real dockerd, etcd, namespace hosts)"
# shellcheck disable=SC2086
go test -tags e2e -count=1 -timeout 50m -v ${GO_TEST_FLAGS:-} ${E2E_RUN:+-run "$E2E_RUN"} ./e2e/ 2>&1 | tee /tmp/podnet-e2e.log
step "all tests passed"
