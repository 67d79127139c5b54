#!/bin/sh
# Benchmark B21 in the QEMU guest of `scripts/vm.sh wireguard-bench`: two
# podnet hosts (test/vm/hosts.sh) with --encryption wireguard, a container
# on each on one vxlan network (MTU 1440), against hand-built tunnels
# between the same two host namespaces, built as a person would:
#
#   wg    WireGuard routing the other side's subnet directly (hwg0, port
#         51900): in each host a bridge (MTU 1440) and a "container"
#         netns on a veth behind it, `wg set … allowed-ips SUBNET`, a
#         route SUBNET dev hwg0, FORWARD accepts for the bridge (dockerd's
#         policy is DROP). The anchor of B21.
#   vxwg  VXLAN inside WireGuard (hwg1 with an inner /32 per host, port
#         51901; VXLAN id 77 between the inner addresses; bridge and
#         container MTU 1390): the other layering podnet could have used,
#         a context row (overlay/doc.go, "Encryption", says why podnet
#         routes into WireGuard directly). The far side's addresses are
#         routed onto the VXLAN device and answered by proxy ARP there,
#         as podnet's bridges answer for remote blocks.
#
# Per pair, in rotating order, it prints
#   "B21 tput PODNET_BPS WG_BPS VXWG_BPS"   (iperf3 -t SECS, 1 stream,
#                                             container on h1 -> h2)
#   "B21 conn PODNET_RATE WG_RATE VXWG_RATE" (bench connrate: connect +
#                                             RST close, SECS s, per s)
# Emulated CPU: only the ratios mean anything.
set -u
# shellcheck source=test/vm/lib.sh
. /podnet/lib.sh
# shellcheck source=test/vm/hosts.sh
. /podnet/hosts.sh
# shellcheck disable=SC2317 # called by lib.sh's dump
dump_more() {
	for i in 1 2; do
		echo "--- h$i podnetd log"
		tail -15 "/tmp/h$i-podnetd.log" 2>/dev/null
		host_exec "$i" ip -4 route 2>&1 | head -20
		host_exec "$i" wg show 2>&1 | head -30
	done
}
PAIRS=${BENCH_VM_PAIRS:-3}
SECS=${BENCH_VM_SECS:-5}
IMG=podnet-test/busybox

# handbuilt ARM DEV PORT SUBNETBASE MTU: the "container" netns ARM1 (in
# h1) and ARM2 (in h2) behind bridge hb-ARM on each host, on
# SUBNETBASE.1.0/24 and SUBNETBASE.2.0/24.
handbuilt() {
	arm=$1 dev=$2 port=$3 base=$4 mtu=$5
	for i in 1 2; do
		wg genkey >"/tmp/$arm$i.key"
		ip netns add "$arm$i"
		# Links from the guest's own mount namespace: the hosts' private
		# ones do not see netns made after them.
		ip -n "h$i" link add "hb-$arm" mtu "$mtu" type bridge &&
			ip -n "h$i" addr add "$base.$i.1/24" dev "hb-$arm" &&
			ip -n "h$i" link set "hb-$arm" up &&
			ip -n "h$i" link add "hv-$arm" mtu "$mtu" master "hb-$arm" type veth peer name eth0 mtu "$mtu" netns "$arm$i" &&
			ip -n "h$i" link set "hv-$arm" up &&
			ip -n "h$i" link add "$dev" type wireguard || fail "h$i: hand-built $arm links"
		host_exec "$i" sh -ec "
			wg set $dev private-key /tmp/$arm$i.key listen-port $port
			iptables -I FORWARD -i hb-$arm -j ACCEPT
			iptables -I FORWARD -o hb-$arm -j ACCEPT" || fail "h$i: hand-built $arm WireGuard"
		ip -n "$arm$i" link set lo up
		ip -n "$arm$i" link set eth0 up
		ip -n "$arm$i" addr add "$base.$i.2/24" dev eth0
		ip -n "$arm$i" route add default via "$base.$i.1"
	done
}

# peer ARM DEV I J PORT ALLOWED: host I's DEV takes host J as its peer.
peer() {
	arm=$1 dev=$2 i=$3 j=$4 port=$5 allowed=$6
	pub=$(wg pubkey <"/tmp/$arm$j.key")
	host_exec "$i" wg set "$dev" peer "$pub" endpoint "$(host_ip "$j"):$port" allowed-ips "$allowed" || fail "h$i: $dev peer"
}

setup_wg() {
	handbuilt wg hwg0 51900 10.77 1440
	peer wg hwg0 1 2 51900 10.77.2.0/24
	peer wg hwg0 2 1 51900 10.77.1.0/24
	for i in 1 2; do
		j=$((3 - i))
		host_exec "$i" sh -ec "ip link set hwg0 mtu 1440 up; ip route add 10.77.$j.0/24 dev hwg0" || fail "h$i: hwg0"
	done
}

setup_vxwg() {
	handbuilt vx hwg1 51901 10.78 1390
	peer vx hwg1 1 2 51901 192.168.77.2/32
	peer vx hwg1 2 1 51901 192.168.77.1/32
	for i in 1 2; do
		j=$((3 - i))
		host_exec "$i" sh -ec "
			ip addr add 192.168.77.$i/32 dev hwg1
			ip link set hwg1 mtu 1440 up
			ip route add 192.168.77.$j/32 dev hwg1
			ip link add hvx type vxlan id 77 local 192.168.77.$i remote 192.168.77.$j dstport 4790 nolearning
			ip link set hvx mtu 1390 up
			echo 1 >/proc/sys/net/ipv4/conf/hvx/proxy_arp
			ip route add 10.78.$j.0/24 dev hvx" || fail "h$i: hvx"
	done
}

# netns_of ARM I: the network namespace path of the arm's end on host I.
netns_of() {
	case $1 in
	pn) echo "/proc/$(dk "$2" inspect -f '{{.State.Pid}}' "b$2")/ns/net" ;;
	*) echo "/run/netns/$1$2" ;;
	esac
}

dst_of() {
	case $1 in
	pn) echo "$PNIP2" ;;
	wg) echo 10.77.2.2 ;;
	vx) echo 10.78.2.2 ;;
	esac
}

# tput ARM: bits/s from h1's end to h2's (iperf3, 1 stream).
tput() {
	nsenter --net="$(netns_of "$1" 2)" iperf3 -s -1 -D >/dev/null 2>&1 || fail "iperf3 server ($1)"
	sleep 0.5
	k=$(nsenter --net="$(netns_of "$1" 1)" iperf3 -c "$(dst_of "$1")" -t "$SECS" -f k 2>/dev/null |
		awk '/receiver/ {for (i = 1; i < NF; i++) if ($(i+1) == "Kbits/sec") print $i}')
	[ -n "$k" ] || fail "iperf3 on $1"
	awk -v k="$k" 'BEGIN { printf "%.0f\n", k * 1000 }'
}

# conn ARM: TCP connections per second from h1's end to h2's.
conn() {
	nsenter --net="$(netns_of "$1" 2)" connrate -serve 0.0.0.0:9100 -lifetime $((SECS + 60))s >/dev/null 2>&1 &
	srv=$!
	sleep 0.5
	r=$(nsenter --net="$(netns_of "$1" 1)" connrate -addr "$(dst_of "$1"):9100" -d "${SECS}s" 2>/dev/null |
		sed -n 's/.* rate=\([0-9.]*\).*/\1/p')
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
	[ -n "$r" ] || fail "connrate on $1"
	echo "$r"
}

hosts_up 2
for i in 1 2; do podnetd_start "$i" --encryption wireguard; done
for i in 1 2; do
	dockerd_start "$i"
	dk "$i" network create -d podnet --ipam-driver podnet -o mode=vxlan --subnet 10.244.0.0/16 pods >/dev/null ||
		fail "h$i: network create"
	dk "$i" run -d --name "b$i" --network pods $IMG sleep 1d >/dev/null || fail "h$i: run b$i"
done
PNIP2=$(dk 2 inspect -f '{{.NetworkSettings.Networks.pods.IPAddress}}' b2)
[ "$(dk 1 exec b1 cat /sys/class/net/eth0/mtu)" = 1440 ] || fail "podnet container MTU is not 1500 - 60"
setup_wg
setup_vxwg
wait_until "podnet: b1 → b2" 60 nsenter --net="$(netns_of pn 1)" busybox ping -c1 -W2 "$PNIP2"
wait_until "hand-built WireGuard: wg1 → wg2" 60 ip netns exec wg1 busybox ping -c1 -W2 10.77.2.2
wait_until "hand-built VXLAN in WireGuard: vx1 → vx2" 60 ip netns exec vx1 busybox ping -c1 -W2 10.78.2.2
tput pn >/dev/null # warm-up
p=0
while [ "$p" -lt "$PAIRS" ]; do
	case $((p % 3)) in
	0) order="pn wg vx" ;;
	1) order="wg vx pn" ;;
	*) order="vx pn wg" ;;
	esac
	for a in $order; do eval "t_$a=\$(tput $a)"; done
	# shellcheck disable=SC2154 # set by eval
	echo "B21 tput $t_pn $t_wg $t_vx"
	for a in $order; do eval "c_$a=\$(conn $a)"; done
	# shellcheck disable=SC2154
	echo "B21 conn $c_pn $c_wg $c_vx"
	p=$((p + 1))
done
echo "B21 done"
exit 0
