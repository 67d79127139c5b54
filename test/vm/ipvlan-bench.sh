#!/bin/sh
# Benchmark B11i in the QEMU guest of `scripts/vm.sh bench`: podnet's ipvlan
# l2 network vs Docker's built-in ipvlan on the same veth parent lan0 (its
# peer is eth0 of namespace "lan", the gateway of both subnets). Prints,
# per pair, "B11I start PODNET_MS DOCKER_MS" (docker run --rm true) and
# "B11I tput PODNET_BPS DOCKER_BPS" (iperf3, container -> lan, 1 stream).
# Emulated CPU: the numbers are context, not a verdict.
set -u
# shellcheck source=test/vm/lib.sh
. /podnet/lib.sh
PAIRS=${BENCH_VM_PAIRS:-3}
SECS=${BENCH_VM_SECS:-5}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
start_ms() {
	t0=$(now_ms)
	docker run --rm --net "$1" podnet-test/busybox true >/dev/null || fail "docker run on $1"
	echo $(($(now_ms) - t0))
}
# tput NET SERVER: bits/s from a container of NET to SERVER in "lan".
tput() {
	docker run -d --name tp --net "$1" podnet-test/busybox sleep 1d >/dev/null || fail "run on $1"
	pid=$(docker inspect -f '{{.State.Pid}}' tp)
	ip netns exec lan iperf3 -s -1 -D >/dev/null 2>&1 || fail "iperf3 server"
	sleep 0.5
	k=$(nsenter --net="/proc/$pid/ns/net" iperf3 -c "$2" -t "$SECS" -f k 2>/dev/null | awk '/receiver/ {for (i = 1; i < NF; i++) if ($(i+1) == "Kbits/sec") print $i}')
	docker rm -f tp >/dev/null
	[ -n "$k" ] || fail "iperf3 on $1"
	awk -v k="$k" 'BEGIN { printf "%.0f\n", k * 1000 }'
}

ip netns add lan
ip link add lan0 type veth peer name eth0 netns lan
ip link set lan0 up
ip netns exec lan sh -c 'ip link set lo up; ip link set eth0 up; ip addr add 10.99.0.1/24 dev eth0; ip addr add 10.98.0.1/24 dev eth0'
start_docker
docker network create -d podnet --ipam-driver podnet -o mode=ipvlan -o parent=lan0 --subnet 10.99.0.0/24 --gateway 10.99.0.1 pn >/dev/null ||
	fail "podnet ipvlan network"
docker network create -d ipvlan -o parent=lan0 -o ipvlan_mode=l2 --subnet 10.98.0.0/24 --gateway 10.98.0.1 dk >/dev/null ||
	fail "docker ipvlan network"
start_ms pn >/dev/null
start_ms dk >/dev/null
i=0
while [ $i -lt "$PAIRS" ]; do
	if [ $((i % 2)) = 0 ]; then a=$(start_ms pn); b=$(start_ms dk); else b=$(start_ms dk); a=$(start_ms pn); fi
	echo "B11I start $a $b"
	if [ $((i % 2)) = 0 ]; then a=$(tput pn 10.99.0.1); b=$(tput dk 10.98.0.1); else b=$(tput dk 10.98.0.1); a=$(tput pn 10.99.0.1); fi
	echo "B11I tput $a $b"
	i=$((i + 1))
done
echo "B11I done"
exit 0
