#!/usr/bin/env bash
# deps.sh: install what podnet and its tests need on Debian 12 (as root).
#
#   scripts/deps.sh [--no-shellcheck]
#
# Installs the missing ones among: docker.io iptables iproute2 nftables
# busybox-static etcd-server etcd-client iperf3 curl ca-certificates openssl make
# procps util-linux systemd (systemd-analyze verifies podnetd.service; systemd
# need not run) docker-registry (the e2e test of `docker plugin install`
# runs its own on loopback) prometheus (the e2e test of podnetd's metrics
# runs its own on loopback, without the recommended node exporter; where
# systemd runs, the services of both packages, which would listen on every
# address, are disabled when this script installs them) qemu-system-x86
# debootstrap (the QEMU guest of scripts/vm.sh, for ipvlan and 802.1q tests
# on Debian's kernel) podman containernetworking-plugins (the e2e tests and
# benchmark B20 of the CNI plugin run podman 4 with its CNI backend; make
# build builds cnitool from the Go module proxy) bird2 (the router the
# LoadBalancer e2e tests and benchmark B18 peer with; its service, where
# systemd runs, is disabled as above), plus shellcheck (optional: a failure to install it is
# only a warning). Runs apt-get update only when something is missing, so a
# second run is quick and needs no network. Then checks that Go is at least
# the version go.mod asks for (and never below 1.26, which the dependencies need), looking in PATH and in
# /usr/local/go/bin. Starts nothing.
#
# Go cannot come from apt (Debian 12 ships 1.19): install the official
# tarball into /usr/local/go and put /usr/local/go/bin on PATH; the
# Makefile and scripts/test.sh add /usr/local/go/bin themselves.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly MIN_GO=1.26
readonly PACKAGES=(docker.io iptables iproute2 nftables busybox-static etcd-server etcd-client
	iperf3 curl ca-certificates openssl make procps util-linux systemd docker-registry prometheus
	qemu-system-x86 debootstrap podman containernetworking-plugins bird2)

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
log() { echo "deps: $*"; }
die() {
	echo "deps: error: $*" >&2
	exit 1
}

# missing PKG...: the packages dpkg does not report as installed.
missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || echo "$p"
	done
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_packages() {
	local with_shellcheck=$1 want todo
	want=("${PACKAGES[@]}")
	mapfile -t todo < <(missing "${want[@]}")
	local sc=()
	if $with_shellcheck; then mapfile -t sc < <(missing shellcheck); fi
	if ((${#todo[@]} == 0 && ${#sc[@]} == 0)); then
		log "all packages present"
		return 0
	fi
	log "installing: ${todo[*]} ${sc[*]}"
	if ! apt-get update -qq >/dev/null; then
		((${#todo[@]} == 0)) || die "apt-get update failed (needed for: ${todo[*]})"
		echo "deps: warning: apt-get update failed: shellcheck not installed (lint skips it)" >&2
		return 0
	fi
	if ((${#todo[@]} > 0)); then
		apt_install "${todo[@]}" || die "apt-get install ${todo[*]} failed"
		local svc
		local -A unit=([docker-registry]=docker-registry [prometheus]=prometheus [bird2]=bird)
		for svc in docker-registry prometheus bird2; do
			if [[ " ${todo[*]} " == *" $svc "* && -d /run/systemd/system ]]; then
				systemctl disable --now "${unit[$svc]}.service" >/dev/null 2>&1 || true
			fi
		done
	fi
	if ((${#sc[@]} > 0)); then
		apt_install shellcheck || echo "deps: warning: shellcheck could not be installed (lint skips it)" >&2
	fi
	log "installed: ${todo[*]} ${sc[*]}"
}

# version_ge A B: dotted version A >= B.
version_ge() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }

check_go() {
	local need=$MIN_GO gomod_go go have
	gomod_go=$(awk '$1 == "go" {print $2; exit}' "$REPO/go.mod" 2>/dev/null || true)
	if [[ -n $gomod_go ]] && version_ge "$gomod_go" "$need"; then need=$gomod_go; fi
	go=$(command -v go || true)
	[[ -z $go && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
	if [[ -z $go ]]; then
		die "Go >= $need is needed and none was found (not in PATH, not in /usr/local/go/bin).
  Install the official tarball:  tar -C /usr/local -xzf go$need.linux-amd64.tar.gz
  then:                          export PATH=/usr/local/go/bin:\$PATH
  (Debian 12's golang package is 1.19: too old.)"
	fi
	# GOTOOLCHAIN=local: report what is installed, never try to download.
	have=$(GOTOOLCHAIN=local "$go" env GOVERSION 2>/dev/null || true)
	have=${have#go}
	have=${have%%[-+ ]*}
	[[ -n $have ]] || die "$go does not report its version"
	if ! version_ge "$have" "$need"; then
		die "$go is Go $have; podnet needs Go >= $need (go.mod says ${gomod_go:-nothing}).
  Install a newer official tarball into /usr/local/go (there is no internet
  access for GOTOOLCHAIN downloads here)."
	fi
	if [[ $go == /usr/local/go/bin/go && :$PATH: != *:/usr/local/go/bin:* ]]; then
		log "Go $have found in /usr/local/go/bin (not on PATH: export PATH=/usr/local/go/bin:\$PATH)"
	else
		log "Go $have ($go)"
	fi
}

main() {
	local with_shellcheck=true
	case ${1:-} in
	"") ;;
	--no-shellcheck) with_shellcheck=false ;;
	-h | --help) usage; return 0 ;;
	*) usage >&2; return 2 ;;
	esac
	[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get)"
	command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
	install_packages "$with_shellcheck"
	check_go
}

main "$@"
