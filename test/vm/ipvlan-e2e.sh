#!/bin/sh
# ipvlan end to end on Debian's stock kernel: dockerd and podnetd inside the
# QEMU guest of `scripts/vm.sh e2e` (which boots this as the test, with
# podnetd, podnetctl and netcheck in /podnet/bin and the test image in
# /podnet/image.tar). Exit status 0 = every step passed.
#
# The LAN is a veth: lan0 in the guest's namespace is the parent, its peer
# is eth0 of namespace "phys" (a physical machine and the router,
# 10.99.0.1), which also carries VLAN 42 (10.98.0.1).
set -u
# shellcheck source=test/vm/lib.sh
. /podnet/lib.sh

say() { echo "GUEST: $*"; }
# shellcheck disable=SC2317 # called by lib.sh's dump
dump_more() {
	echo "--- links"; ip -o -d link show | cut -c1-160
	echo "--- routes"; ip -4 route
	echo "--- podnet's table"; nft list table inet podnet 2>&1 | head -60
}
# refused DESC WANT CMD...: CMD fails and its output contains WANT.
refused() {
	desc=$1 want=$2
	shift 2
	if out=$("$@" 2>&1); then fail "$desc: accepted"; fi
	case $out in *"$want"*) say "ok: $desc refused: $want" ;; *) fail "$desc: error does not say '$want': $out" ;; esac
}
# shellcheck disable=SC2317 # called through wait_until
ping_from() { docker exec "$1" ping -c1 -W2 "$2"; }
phys() { ip netns exec phys "$@"; }
net_create() { docker network create -d podnet --ipam-driver podnet "$@"; }
# nothing_left WHAT: no podnet sub-interface, shim, probe, isolated parent,
# route or rule of a removed network, and no pool in etcd.
nothing_left() {
	links=$(ip -o link show | awk -F': ' '{print $2}' | grep -E '^(pnv|pnp|pnd|pn-|lan0\.42)' || true)
	[ -z "$links" ] || fail "$1: links left: $links"
	routes=$(ip -4 route | grep -E '10\.9[89]\.' || true)
	[ -z "$routes" ] || fail "$1: routes left: $routes"
	if nft list table inet podnet 2>/dev/null | grep -q 'pn-[0-9a-f]'; then fail "$1: rules left: $(nft list table inet podnet)"; fi
	pools=$(podnetctl pool ls 2>&1 | grep -E '10\.9[89]\.' || true)
	[ -z "$pools" ] || fail "$1: pools left: $pools"
	say "ok: $1 leaves nothing"
}

say "start at $(cut -d' ' -f1 /proc/uptime)s"
ip netns add phys
ip link add lan0 type veth peer name eth0 netns phys
ip link set lan0 up
phys ip link set lo up
phys ip link set eth0 up
phys ip addr add 10.99.0.1/24 dev eth0
phys ip link add link eth0 name eth0.42 type vlan id 42
phys ip link set eth0.42 up
phys ip addr add 10.98.0.1/24 dev eth0.42

start_docker
IMG=podnet-test/busybox

# --- ipvlan l2 with host access: containers, the LAN, the host, -p.
net_create -o mode=ipvlan -o parent=lan0 -o podnet.host-access=true \
	--subnet 10.99.0.0/24 --gateway 10.99.0.1 --aux-address phys2=10.99.0.2 ipv ||
	fail "create the ipvlan l2 network"
say "ok: ipvlan l2 network created"
docker run -d --name c1 --network ipv $IMG sleep 1d >/dev/null || fail "run c1"
docker run -d --name c2 --network ipv $IMG sleep 1d >/dev/null || fail "run c2"
ip1=$(docker inspect -f '{{.NetworkSettings.Networks.ipv.IPAddress}}' c1)
ip2=$(docker inspect -f '{{.NetworkSettings.Networks.ipv.IPAddress}}' c2)
if [ -z "$ip1" ] || [ -z "$ip2" ] || [ "$ip1" = "$ip2" ]; then fail "addresses: '$ip1' '$ip2'"; fi
[ "$(docker exec c1 cat /sys/class/net/eth0/address)" = "$(cat /sys/class/net/lan0/address)" ] ||
	fail "an ipvlan interface must carry its parent's MAC"
wait_until "c1 → c2 ($ip2)" 30 ping_from c1 "$ip2"
wait_until "c2 → c1 ($ip1)" 30 ping_from c2 "$ip1"
wait_until "c1 → the LAN's router 10.99.0.1" 30 ping_from c1 10.99.0.1
wait_until "physical machine → c2" 30 phys busybox ping -c1 -W2 "$ip2"
wait_until "the host → c1 through the shim" 30 busybox ping -c1 -W2 "$ip1"
refused "--ip of the aux address" "reserved with --aux-address" docker run --rm --network ipv --ip 10.99.0.2 $IMG true
refused "an l3 network on the l2 network's parent" "ipvlan_mode=l2" \
	net_create -o mode=ipvlan -o parent=lan0 -o ipvlan_mode=l3 --subnet 10.97.0.0/24 bad
docker run -d --name web --network ipv -p 8080:80 $IMG httpd -f -p 80 -h /etc >/dev/null || fail "run web with -p"
shim=$(ip -4 -o addr show dev "pn-$(docker network inspect -f '{{.Id}}' ipv | cut -c1-12)" | awk '{print $4}' | cut -d/ -f1)
[ -n "$shim" ] || fail "no host-access shim address"
wait_until "-p: the host → 127.0.0.1:8080" 30 sh -c 'timeout 5 busybox wget -q -O - http://127.0.0.1:8080/passwd | grep -q root:'
wait_until "-p: the LAN → the host's shim $shim:8080" 30 \
	sh -c "ip netns exec phys timeout 5 busybox wget -q -O - http://$shim:8080/passwd | grep -q root:"
docker rm -f c1 c2 web >/dev/null
docker network rm ipv >/dev/null || fail "network rm ipv"
nothing_left "ipvlan l2 network rm"

# --- ipvlan l3: no gateway, the device is the default route; with host
# access, -p works although Docker never asks to publish for it.
net_create -o mode=ipvlan -o parent=lan0 -o ipvlan_mode=l3 -o podnet.host-access=true --subnet 10.99.0.0/24 ipv3 ||
	fail "create l3"
docker run -d --name d1 --network ipv3 $IMG sleep 1d >/dev/null || fail "run d1"
docker run -d --name web3 --network ipv3 -p 8081:80 $IMG httpd -f -p 80 -h /etc >/dev/null || fail "run web3 with -p"
ip2=$(docker inspect -f '{{.NetworkSettings.Networks.ipv3.IPAddress}}' web3)
docker exec d1 ip route | grep -q '^default dev eth0' || fail "l3: default route is not the device: $(docker exec d1 ip route)"
wait_until "l3: d1 → web3 ($ip2)" 30 ping_from d1 "$ip2"
wait_until "l3 -p: the host → 127.0.0.1:8081" 30 sh -c 'timeout 5 busybox wget -q -O - http://127.0.0.1:8081/passwd | grep -q root:'
docker rm -f d1 web3 >/dev/null
docker network rm ipv3 >/dev/null || fail "network rm ipv3"
nothing_left "ipvlan l3 network rm"

# --- a VLAN parent podnet creates, and removes with the network.
net_create -o mode=ipvlan -o parent=lan0.42 --subnet 10.98.0.0/24 --gateway 10.98.0.1 vl || fail "create on lan0.42"
ip -d link show lan0.42 | grep -q 'vlan protocol 802.1Q id 42' || fail "lan0.42 is not VLAN 42"
docker run -d --name v1 --network vl $IMG sleep 1d >/dev/null || fail "run v1"
wait_until "v1 → the LAN over VLAN 42" 30 ping_from v1 10.98.0.1
docker rm -f v1 >/dev/null
docker network rm vl >/dev/null || fail "network rm vl"
nothing_left "VLAN parent network rm"

say "PASS: ipvlan end to end in the guest ($(cut -d' ' -f1 /proc/uptime)s)"
exit 0
