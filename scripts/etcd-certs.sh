#!/usr/bin/env bash
# etcd-certs.sh: the certificates of an etcd cluster that only podnet can
# write: a CA, a certificate per etcd member (serves clients and peers,
# authenticates to peers) and a client certificate per podnetd host (and
# one for etcdctl). Uses Debian's openssl; keys are EC P-256, made 0600 in
# DIR (0700).
#
# usage: scripts/etcd-certs.sh DIR ca
#        scripts/etcd-certs.sh DIR member NAME ADDR...   ADDR: an IP or DNS name
#        scripts/etcd-certs.sh DIR client NAME
#
# Writes DIR/ca.crt and DIR/ca.key (keep ca.key off the hosts), then
# DIR/NAME.crt and DIR/NAME.key. An existing file is never overwritten
# (delete it to renew). Member certificates are valid for 825 days, the CA
# for 10 years. Then, for each member M at address A:
#
#   etcd --name M --cert-file DIR/M.crt --key-file DIR/M.key \
#        --trusted-ca-file DIR/ca.crt --client-cert-auth \
#        --peer-cert-file DIR/M.crt --peer-key-file DIR/M.key \
#        --peer-trusted-ca-file DIR/ca.crt --peer-client-cert-auth \
#        --listen-client-urls https://A:2379 --advertise-client-urls https://A:2379 \
#        --listen-peer-urls https://A:2380 --initial-advertise-peer-urls https://A:2380 ...
#
# and on each host H (copy ca.crt, H.crt, H.key there, root-only):
#
#   podnetd --etcd-endpoints https://A1:2379,... --etcd-cacert ca.crt \
#           --etcd-cert H.crt --etcd-key H.key
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die() {
	echo "etcd-certs: error: $*" >&2
	exit 1
}

(($# >= 2)) || {
	usage >&2
	exit 2
}
readonly DIR=${1%/} CMD=$2
shift 2
command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl (or run scripts/deps.sh)"
umask 077
mkdir -p "$DIR"
chmod 0700 "$DIR"

# name_ok NAME: a file name of letters, digits, '.', '_', '-'.
name_ok() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]] || die "name '$1': use letters, digits, '.', '_', '-'"; }

# fresh FILE...: none of FILE exists (never overwrite a key or certificate).
fresh() {
	local f
	for f in "$@"; do
		if [[ -e $f ]]; then
			echo "etcd-certs: $f exists: left alone (delete it to make a new one)"
			return 1
		fi
	done
}

# issue NAME EXTENSIONS: a key and a certificate signed by the CA.
issue() {
	local name=$1 ext=$2 csr
	[[ -f $DIR/ca.crt && -f $DIR/ca.key ]] || die "no CA in $DIR: run $0 $DIR ca first"
	fresh "$DIR/$name.crt" "$DIR/$name.key" || return 0
	csr=$(mktemp)
	trap 'rm -f "$csr"' RETURN
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$DIR/$name.key" -out "$csr" -subj "/CN=$name" 2>/dev/null
	openssl x509 -req -in "$csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
		-extfile <(printf '%s\n' "$ext") -out "$DIR/$name.crt" 2>/dev/null
	chmod 0600 "$DIR/$name.key" "$DIR/$name.crt"
	echo "etcd-certs: $DIR/$name.crt"
}

case $CMD in
ca)
	(($# == 0)) || die "ca takes no arguments"
	fresh "$DIR/ca.crt" "$DIR/ca.key" || exit 0
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days 3650 -sha256 -subj "/CN=podnet etcd CA" \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	chmod 0600 "$DIR/ca.key" "$DIR/ca.crt"
	echo "etcd-certs: $DIR/ca.crt"
	;;
member)
	(($# >= 2)) || die "usage: $0 DIR member NAME ADDR..."
	name_ok "$1"
	name=$1
	shift
	sans=()
	for a in "$@"; do
		if [[ $a =~ ^[0-9.]+$ || $a == *:* ]]; then sans+=("IP:$a"); else sans+=("DNS:$a"); fi
	done
	issue "$name" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$(IFS=, && echo "${sans[*]}")"
	;;
client)
	(($# == 1)) || die "usage: $0 DIR client NAME"
	name_ok "$1"
	issue "$1" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
	;;
*) usage >&2 && die "unknown command '$CMD'" ;;
esac
