#!/usr/bin/env bash
# dockerd.sh: make sure the machine's own dockerd runs (for `make run`).
#
#   scripts/dockerd.sh ensure   # start dockerd unless one answers; wait for it
#   scripts/dockerd.sh stop     # stop the dockerd that `ensure` started
#
# ensure: if a dockerd answers on /var/run/docker.sock, do nothing. Else
# start `dockerd` in the background (its own session; log
# /var/log/podnet-dockerd.log, pid file /var/run/docker.pid) and wait until
# `docker info` works (DOCKERD_TIMEOUT seconds, default 60). Prints what it
# did. There is no systemd here: the daemon is a plain background process.
#
# Env: DOCKER (docker CLI; default /usr/bin/docker when present), DOCKERD
# (default dockerd from PATH, else /usr/sbin/dockerd), DOCKERD_ARGS (extra
# flags, split on spaces), DOCKERD_TIMEOUT.
set -euo pipefail

readonly SOCK=/var/run/docker.sock
readonly PIDFILE=/var/run/docker.pid
readonly LOGFILE=/var/log/podnet-dockerd.log
# Written by `ensure` when it starts dockerd, so `stop` never stops a dockerd
# someone else started.
readonly MARKER=/var/run/podnet-dockerd.pid

usage() { sed -n '2,15s/^# \{0,1\}//p' "$0"; }
log() { echo "dockerd.sh: $*"; }
die() {
	echo "dockerd.sh: error: $*" >&2
	exit 1
}

default_docker() {
	if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker || echo docker; fi
}

answers() { timeout 10 "$DOCKER" -H "unix://$SOCK" info --format '{{.ServerVersion}}' 2>/dev/null; }

# pid_alive PID: running and not a zombie.
pid_alive() {
	local stat
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

recorded_pid() {
	local pid=
	{ read -r pid <"$1" || true; } 2>/dev/null
	pid_alive "$pid" && echo "$pid"
}

# wait_ready PID: poll `docker info` until it answers, PID dies, or timeout.
wait_ready() {
	local pid=$1 deadline=$((SECONDS + DOCKERD_TIMEOUT)) version
	until version=$(answers); do
		if [[ -n $pid ]] && ! pid_alive "$pid"; then
			tail -n 20 "$LOGFILE" >&2 || true
			die "dockerd (pid $pid) exited; see $LOGFILE"
		fi
		((SECONDS < deadline)) || die "dockerd not answering on $SOCK after ${DOCKERD_TIMEOUT}s; see $LOGFILE"
		sleep 0.2
	done
	echo "$version"
}

cmd_ensure() {
	local version pid
	if version=$(answers); then
		log "dockerd $version already answers on $SOCK: nothing to do"
		return 0
	fi
	if pid=$(recorded_pid "$PIDFILE"); then
		# A dockerd is starting (or hung): wait for it rather than start a second.
		log "dockerd (pid $pid from $PIDFILE) is running but not answering yet: waiting"
		version=$(wait_ready "$pid")
		log "dockerd $version answers on $SOCK (pid $pid)"
		return 0
	fi
	command -v "$DOCKERD" >/dev/null || die "$DOCKERD not found: run scripts/deps.sh"
	rm -f "$PIDFILE"
	local args=()
	# shellcheck disable=SC2206 # DOCKERD_ARGS is documented as space-separated
	[[ -n ${DOCKERD_ARGS:-} ]] && args=($DOCKERD_ARGS)
	mkdir -p "$(dirname "$LOGFILE")"
	(cd / && exec setsid "$DOCKERD" --pidfile "$PIDFILE" "${args[@]}" </dev/null >>"$LOGFILE" 2>&1) &
	pid=$!
	echo "$pid" >"$MARKER"
	log "started dockerd (pid $pid, log $LOGFILE); waiting for it to answer"
	version=$(wait_ready "$pid")
	log "dockerd $version answers on $SOCK (pid $pid)"
}

cmd_stop() {
	local pid deadline
	if ! pid=$(recorded_pid "$MARKER"); then
		rm -f "$MARKER"
		log "no dockerd started by this script is running: nothing to do"
		return 0
	fi
	kill -TERM "$pid"
	deadline=$((SECONDS + 60))
	while pid_alive "$pid"; do
		((SECONDS < deadline)) || die "dockerd (pid $pid) still running 60s after SIGTERM"
		sleep 0.2
	done
	rm -f "$MARKER"
	log "stopped dockerd (pid $pid)"
}

main() {
	DOCKER=${DOCKER:-$(default_docker)}
	DOCKERD=${DOCKERD:-$(command -v dockerd || echo /usr/sbin/dockerd)}
	DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}
	case ${1:-} in
	ensure | stop) [[ $(id -u) -eq 0 ]] || die "must run as root" ;;
	-h | --help) usage; return 0 ;;
	*) usage >&2; return 2 ;;
	esac
	"cmd_$1"
}

main "$@"
