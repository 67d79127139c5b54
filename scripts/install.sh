#!/usr/bin/env bash
# install.sh: install or remove podnet on this host (make install / make
# uninstall call it; both need the binaries in bin/: make build).
#
#   scripts/install.sh install|uninstall
#
# Installs podnetd and podnetctl into $BINDIR, the CNI plugin (bin/podnet-cni)
# as "podnet" into $CNI_BIN_DIR, podnetd.service into $UNITDIR,
# /etc/default/podnet (only if absent: your settings survive upgrades),
# podnetctl's bash, zsh and fish completions under $DATADIR and the
# Prometheus rules as $DATADIR/podnet/podnet-rules.yml. uninstall
# removes every one of those files (the settings too) and, on a live system
# run by systemd, disables and stops podnetd first. Neither touches
# podnet's state: the kernel objects of running containers (`podnetd
# cleanup` removes them; run it before uninstalling) and the embedded etcd
# data in /var/lib/podnet.
#
# Env (make passes its variables of the same names):
#   PREFIX      default /usr/local
#   DESTDIR     staging root prepended to every path (packaging); empty = live
#   BINDIR      default $PREFIX/bin
#   DATADIR     default $PREFIX/share
#   SYSCONFDIR  default /etc
#   CNI_BIN_DIR default /opt/cni/bin (where CNI runtimes look for plugins;
#               podman's cni_plugin_dirs and a kubelet's --cni-bin-dir)
#   UNITDIR     default $PREFIX/lib/systemd/system for PREFIX /usr and
#               /usr/local (both on systemd's search path), else
#               /etc/systemd/system
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO

PREFIX=${PREFIX:-/usr/local}
PREFIX=${PREFIX%/}
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
BINDIR=${BINDIR:-$PREFIX/bin}
DATADIR=${DATADIR:-$PREFIX/share}
SYSCONFDIR=${SYSCONFDIR:-/etc}
CNI_BIN_DIR=${CNI_BIN_DIR:-/opt/cni/bin}
if [[ -z ${UNITDIR:-} ]]; then
	case $PREFIX in
	/usr | /usr/local) UNITDIR=$PREFIX/lib/systemd/system ;;
	*) UNITDIR=/etc/systemd/system ;;
	esac
fi

log() { echo "install: $*"; }
die() {
	echo "install: error: $*" >&2
	exit 1
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

# The installed files, relative to DESTDIR: binaries, unit, settings,
# completions. One list for install and uninstall.
UNIT=$UNITDIR/podnetd.service
DEFAULTS=$SYSCONFDIR/default/podnet
BASH_COMPLETION=$DATADIR/bash-completion/completions/podnetctl
ZSH_COMPLETION=$DATADIR/zsh/site-functions/_podnetctl
FISH_COMPLETION=$DATADIR/fish/vendor_completions.d/podnetctl.fish
CNI_PLUGIN=$CNI_BIN_DIR/podnet
PROMETHEUS_RULES=$DATADIR/podnet/podnet-rules.yml
FILES=("$BINDIR/podnetd" "$BINDIR/podnetctl" "$CNI_PLUGIN" "$UNIT" "$DEFAULTS"
	"$BASH_COMPLETION" "$ZSH_COMPLETION" "$FISH_COMPLETION" "$PROMETHEUS_RULES")

# live_systemd: installing into the running system, and systemd runs it.
live_systemd() { [[ -z $DESTDIR && -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

do_install() {
	local b
	for b in podnetd podnetctl podnet-cni; do
		[[ -x $REPO/bin/$b ]] || die "bin/$b is missing: run make build first"
	done
	for b in BINDIR DATADIR SYSCONFDIR UNITDIR CNI_BIN_DIR; do
		[[ ${!b} == /* ]] || die "$b=${!b}: want an absolute path"
	done
	install -D -m 0755 "$REPO/bin/podnetd" "$DESTDIR$BINDIR/podnetd"
	install -D -m 0755 "$REPO/bin/podnetctl" "$DESTDIR$BINDIR/podnetctl"
	install -D -m 0755 "$REPO/bin/podnet-cni" "$DESTDIR$CNI_PLUGIN"
	install -d -m 0755 "$DESTDIR$UNITDIR"
	sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" "$REPO/dist/podnetd.service.in" >"$DESTDIR$UNIT.tmp"
	chmod 0644 "$DESTDIR$UNIT.tmp"
	mv -f "$DESTDIR$UNIT.tmp" "$DESTDIR$UNIT"
	if [[ -e $DESTDIR$DEFAULTS ]]; then
		log "kept $DESTDIR$DEFAULTS (your settings)"
	else
		install -D -m 0644 "$REPO/dist/podnet.default" "$DESTDIR$DEFAULTS"
	fi
	local shell f
	for shell in bash zsh fish; do
		case $shell in
		bash) f=$BASH_COMPLETION ;;
		zsh) f=$ZSH_COMPLETION ;;
		fish) f=$FISH_COMPLETION ;;
		esac
		install -d -m 0755 "$(dirname "$DESTDIR$f")"
		"$REPO/bin/podnetctl" completion "$shell" >"$DESTDIR$f.tmp"
		chmod 0644 "$DESTDIR$f.tmp"
		mv -f "$DESTDIR$f.tmp" "$DESTDIR$f"
	done
	install -D -m 0644 "$REPO/dist/prometheus/podnet-rules.yml" "$DESTDIR$PROMETHEUS_RULES"
	for f in "${FILES[@]}"; do log "installed $DESTDIR$f"; done
	if live_systemd; then
		systemctl daemon-reload
		log "next: set PODNET_ETCD_ENDPOINTS (and TLS) in $DEFAULTS, then: systemctl enable --now podnetd"
	fi
}

do_uninstall() {
	if live_systemd && systemctl cat podnetd.service >/dev/null 2>&1; then
		log "stopping and disabling podnetd.service (containers keep their network)"
		systemctl disable --now podnetd.service || log "warning: could not stop podnetd.service"
	fi
	local f
	for f in "${FILES[@]}"; do
		if [[ -e $DESTDIR$f || -L $DESTDIR$f ]]; then
			rm -f "$DESTDIR$f"
			log "removed $DESTDIR$f"
		fi
	done
	rmdir "$DESTDIR$(dirname "$PROMETHEUS_RULES")" 2>/dev/null || true
	if live_systemd; then systemctl daemon-reload; fi
	log "left alone: kernel state of running containers (podnetd cleanup, before uninstalling, removes it) and /var/lib/podnet"
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
-h | --help) usage ;;
*) usage >&2; exit 2 ;;
esac
