#!/bin/sh
# Encryption between hosts end to end on Debian's stock kernel (which has
# WireGuard): three podnet hosts in namespaces of the QEMU guest of
# `scripts/vm.sh wireguard-e2e` (test/vm/hosts.sh), one etcd, dockerd on
# h1 and h2, strict reverse-path filtering (rp_filter=1) on every host.
# Exit status 0 = every step passed. In order:
#
#   1. a cluster in clear (--encryption none): containers c1 (h1) and c2
#      (h2) on one vxlan network reach each other, and h1's own processes
#      reach c2;
#   2. switched on host by host (podnetctl encryption set wireguard, then
#      each podnetd restarted with --encryption wireguard): between an
#      encrypted and a clear host nothing passes (fail closed), a podnetd
#      started with the old mode is refused naming both, and once both
#      are encrypted traffic flows again; the key file is 0600; h3 joins;
#      podnetctl host ls shows every host's mode and key fingerprint;
#   3. h1's own processes (not a container) reach c2 over the vxlan
#      network and d2 over a dual-stack direct-routing network (IPv4 and
#      IPv6), from h1's tunnel addresses; a capture on the underlay while
#      containers and h1 itself talk over both networks and a NodePort on
#      h1 forwards to c2 on h2: between hosts WireGuard only (no VXLAN, no
#      pod address, no payload in clear);
#   4. a machine on the underlay forging h2's address injects nothing:
#      not as VXLAN, not as a pod source routed directly, not through
#      WireGuard with a key nobody knows;
#   5. h2's key changes (data dir key removed): h1 has the new key as a
#      peer within 1 s of h2 registering it, the old one is gone;
#   6. podnetd restarts on both ends keep an established connection; h1's
#      restart changes nothing in its kernel (its first pass reports zero
#      changes, the tunnel addresses on pnwg stay);
#   7. h3 stops: once its lease expires it is in no peer list;
#   8. removing the direct-routing network on h1 takes its tunnel
#      addresses off pnwg and its routes away; the other network's stay.
set -u
# shellcheck source=test/vm/lib.sh
. /podnet/lib.sh
# shellcheck source=test/vm/hosts.sh
. /podnet/hosts.sh

say() { echo "GUEST: $*"; }
# shellcheck disable=SC2317 # called by lib.sh's dump
dump_more() {
	for i in 1 2 3; do
		echo "--- h$i podnetd log"
		tail -25 "/tmp/h$i-podnetd.log" 2>/dev/null
		echo "--- h$i routes, wg"
		host_exec "$i" ip -4 route 2>&1 | head -20
		host_exec "$i" wg show pnwg 2>&1 | head -20
	done
}
IMG=podnet-test/busybox
SERVE="netcheck udp-server 9001 & exec netcheck echo-server 9000"
ENC="--encryption wireguard --liveness-ttl 10s"
CLEAR="--encryption none --liveness-ttl 10s"
# shellcheck disable=SC2317 # called through wait_until
ping_c() { dk "$1" exec "$2" ping -c1 -W2 "$3"; }
# shellcheck disable=SC2317
no_ping_c() { ! dk "$1" exec "$2" ping -c1 -W1 "$3"; }
# peers I: host I's WireGuard peers' public keys, sorted.
peers() { host_exec "$1" wg show pnwg peers 2>/dev/null | sort; }
# pubkey I: host I's public key as its record says.
pubkey() { host_field "$1" publicKey; }
# host_field I FIELD: a string field of host I in podnetctl host ls -o json.
host_field() {
	pctl 1 host ls -o json | tr -d ' \n' | tr '{' '\n' | grep "\"name\":\"h$1\"" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"
}
# log_ms FILE PATTERN: the time (ms since the epoch) of the last line of
# FILE matching PATTERN (slog's time=...).
log_ms() {
	t=$(grep "$2" "$1" | tail -1 | sed -n 's/^time=\([^ ]*\) .*/\1/p')
	[ -n "$t" ] && date -d "$t" +%s%3N
}
# shellcheck disable=SC2317
logs_have() { dk "$1" logs "$2" 2>&1 | grep -q "$3"; }
# host_echo I ADDR TEXT: a process of host I itself (not a container)
# sends TEXT to the echo server at ADDR:9000 and gets it back.
# shellcheck disable=SC2317
host_echo() { echo "$3" | host_exec "$1" busybox nc -w 3 "$2" 9000 | grep -q "$3"; }
# tunnel_src I NET: the source of host I's routes into NET (its tunnel
# address there), as ip route shows it.
# pnwg_addrs I: the addresses on host I's pnwg, sorted, one a line.
pnwg_addrs() { host_exec "$1" ip -o addr show dev pnwg | awk '{print $4}' | grep -v '^fe80' | sort; }
tunnel_src() { host_exec "$1" ip route show proto 152 | grep "^$2" | sed -n 's/.* src \([0-9a-f.:]*\).*/\1/p' | head -1; }

say "start at $(cut -d' ' -f1 /proc/uptime)s"
hosts_up 3
# Strict reverse-path filtering on every host, as hardened hosts run it:
# every path below (pods, the hosts' own processes, NodePort) must pass.
for i in 1 2 3; do
	host_exec "$i" sysctl -qw net.ipv4.conf.all.rp_filter=1 || fail "h$i: rp_filter"
done

# --- 1. In clear.
podnetd_start 1 $CLEAR
podnetd_start 2 $CLEAR
dockerd_start 1
dockerd_start 2
for i in 1 2; do
	dk "$i" network create -d podnet --ipam-driver podnet -o mode=vxlan --subnet 10.244.0.0/16 pods >/dev/null ||
		fail "h$i: network create"
done
dk 1 run -d --name c1 --network pods $IMG sh -c "$SERVE" >/dev/null || fail "run c1"
dk 2 run -d --name c2 --network pods --label app=echo $IMG sh -c "$SERVE" >/dev/null || fail "run c2"
ip1=$(dk 1 inspect -f '{{.NetworkSettings.Networks.pods.IPAddress}}' c1)
ip2=$(dk 2 inspect -f '{{.NetworkSettings.Networks.pods.IPAddress}}' c2)
[ -n "$ip1" ] && [ -n "$ip2" ] || fail "container addresses '$ip1' '$ip2'"
wait_until "in clear: c1 → c2 ($ip2)" 60 ping_c 1 c1 "$ip2"
wait_until "in clear: h1 itself → c2" 60 host_echo 1 "$ip2" host-in-clear
host_exec 1 ip link show pnwg >/dev/null 2>&1 && fail "a WireGuard device without encryption"

# --- 2. Switched on host by host.
pctl 1 encryption set wireguard | grep -q 'restart podnetd with --encryption wireguard on: h1, h2' ||
	fail "encryption set: $(pctl 1 encryption)"
podnetd_stop 1
podnetd_start 1 $ENC
[ "$(stat -c %a /var/lib/podnet-h1/wireguard.key)" = 600 ] || fail "key file mode $(stat -c %a /var/lib/podnet-h1/wireguard.key)"
wait_until "h1 encrypted, h2 in clear: c1 → c2 fails (fail closed)" 60 no_ping_c 1 c1 "$ip2"
for k in 1 2 3; do
	no_ping_c 1 c1 "$ip2" || fail "between an encrypted and a clear host a ping passed ($k)"
	no_ping_c 2 c2 "$ip1" || fail "between a clear and an encrypted host a ping passed ($k)"
done
say "ok: nothing passes between an encrypted and a clear host"
podnetd_stop 2
if host_exec 2 timeout 120 podnetd --host-name h2 --data-dir /var/lib/podnet-h2 --etcd-endpoints "$HOSTS_ETCD" \
	--admin-socket /run/podnet-h2.sock --dns-addr off --metrics-addr off --encryption none >/tmp/refused.log 2>&1; then
	fail "a podnetd with --encryption none started in a wireguard cluster"
fi
grep -q -- '--encryption none, but the cluster.s encryption is wireguard' /tmp/refused.log ||
	fail "refusal does not name the difference: $(tail -3 /tmp/refused.log)"
say "ok: a podnetd with the old mode refused: $(grep -o 'encryption none, but[^:]*' /tmp/refused.log | head -1)"
podnetd_start 2 $ENC
wait_until "both encrypted: c1 → c2" 60 ping_c 1 c1 "$ip2"
wait_until "both encrypted: c2 → c1" 60 ping_c 2 c2 "$ip1"
podnetd_start 3 $ENC
k1=$(pubkey 1) k2=$(pubkey 2) k3=$(pubkey 3)
[ -n "$k1" ] && [ -n "$k2" ] && [ -n "$k3" ] || fail "public keys in host records: '$k1' '$k2' '$k3'"
# shellcheck disable=SC2317
peers_are() { [ "$(peers "$1" | tr '\n' ' ')" = "$(printf '%s\n' "$2" "$3" | grep -v '^$' | sort | tr '\n' ' ')" ]; }
wait_until "h1's peers are h2 and h3" 30 peers_are 1 "$k2" "$k3"
wait_until "h2's peers are h1 and h3" 30 peers_are 2 "$k1" "$k3"
wait_until "h3's peers are h1 and h2" 30 peers_are 3 "$k1" "$k2"
hl=$(pctl 1 host ls)
[ "$(echo "$hl" | grep -c ' wireguard ')" = 3 ] || fail "host ls does not show 3 encrypted hosts: $hl"
for i in 1 2 3; do
	fp=$(host_field "$i" keyFingerprint)
	echo "$hl" | grep "^h$i " | grep -q " wireguard  *$fp " || fail "host ls: h$i without its fingerprint $fp: $hl"
done
say "ok: host ls shows every host's encryption and key fingerprint: $(for i in 1 2 3; do printf 'h%s %s %s; ' "$i" "$(host_field "$i" encryption)" "$(host_field "$i" keyFingerprint)"; done)"
host_exec 1 ip -4 route show proto 152 | grep -q "dev pnwg" || fail "h1 routes no block into pnwg: $(host_exec 1 ip route)"
host_exec 1 ip -4 route show proto 152 | grep -q "pnx" && fail "h1 still routes over VXLAN: $(host_exec 1 ip route)"
[ "$(host_exec 1 cat /sys/class/net/pnwg/mtu)" = 1440 ] || fail "pnwg MTU $(host_exec 1 cat /sys/class/net/pnwg/mtu), want 1500 - 60"

# --- 3. A capture on the underlay: between hosts WireGuard only, for a
# vxlan network, a direct-routing network and NodePort forwarding.
for i in 1 2; do
	dk "$i" network create -d podnet --ipam-driver podnet -o mode=vxlan -o podnet.direct-routing=true \
		--ipv6 --subnet 10.245.0.0/16 --subnet fd00:245::/64 direct >/dev/null || fail "h$i: create the direct-routing network"
done
dk 1 run -d --name d1 --network direct $IMG sleep 1d >/dev/null || fail "run d1"
dk 2 run -d --name d2 --network direct $IMG sh -c "$SERVE" >/dev/null || fail "run d2"
dip2=$(dk 2 inspect -f '{{.NetworkSettings.Networks.direct.IPAddress}}' d2)
dip6=$(dk 2 inspect -f '{{.NetworkSettings.Networks.direct.GlobalIPv6Address}}' d2)
[ -n "$dip6" ] || fail "d2 has no IPv6 address"
wait_until "direct routing, encrypted: d1 → d2 ($dip2)" 60 ping_c 1 d1 "$dip2"
host_exec 1 ip -4 route show proto 152 | grep "^10.245" | grep -q "dev pnwg" ||
	fail "h1 routes the direct-routing network outside pnwg: $(host_exec 1 ip -4 route show proto 152)"
# h1's own processes: from its tunnel address in each pool, on pnwg.
wait_until "encrypted: h1 itself → c2 (vxlan)" 60 host_echo 1 "$ip2" host-encrypted
wait_until "encrypted: h1 itself → d2 (direct routing)" 60 host_echo 1 "$dip2" host-encrypted-direct
wait_until "encrypted: h1 itself → d2 over IPv6 ($dip6)" 60 host_echo 1 "$dip6" host-encrypted-v6
tun1=$(tunnel_src 1 10.244.) tun1d=$(tunnel_src 1 10.245.) tun1v6=$(host_exec 1 ip -6 route show proto 152 | grep '^fd00:245:' |
	sed -n 's/.* src \([0-9a-f:]*\).*/\1/p' | head -1)
[ -n "$tun1" ] && [ -n "$tun1d" ] && [ -n "$tun1v6" ] || fail "h1's routes into pnwg without a source: $(host_exec 1 ip route show proto 152; host_exec 1 ip -6 route show proto 152)"
for a in "$tun1" "$tun1d" "$tun1v6"; do
	host_exec 1 ip addr show dev pnwg | grep -q " $a/" || fail "tunnel address $a not on pnwg: $(host_exec 1 ip addr show dev pnwg)"
done
logs_have 2 c2 "from $tun1:" || fail "c2 did not see h1 as its tunnel address $tun1: $(dk 2 logs c2 2>&1 | tail -3)"
logs_have 2 d2 "from $tun1d:" || fail "d2 did not see h1 as its tunnel address $tun1d: $(dk 2 logs d2 2>&1 | tail -3)"
logs_have 2 d2 "from \[$tun1v6\]:" || fail "d2 did not see h1 as its tunnel address $tun1v6: $(dk 2 logs d2 2>&1 | tail -3)"
say "ok: h1's own processes reach pods on h2 from its tunnel addresses $tun1, $tun1d, $tun1v6 (on pnwg)"
pctl 1 service create echo --selector app=echo --port 9000 --type NodePort --node-port 30090 >/dev/null ||
	fail "service create"
# shellcheck disable=SC2317
nodeport() { echo nodeport-hello | busybox nc -w 3 "$(host_ip 1)" 30090 | grep -q nodeport-hello; }
wait_until "NodePort on h1 → c2 on h2" 120 nodeport
tcpdump -i lan0 -n -U -w /tmp/cap.pcap >/tmp/tcpdump.log 2>&1 &
tcpd=$!
wait_until "tcpdump listens" 30 grep -q listening /tmp/tcpdump.log
dk 1 exec c1 netcheck udp-send "$ip2:9001" PODNET-SECRET-UDP >/dev/null || fail "udp c1 → c2"
dk 2 exec c2 sh -c "echo PODNET-SECRET-TCP | nc -w 5 $ip1 9000" | grep -q PODNET-SECRET-TCP || fail "tcp c2 → c1"
dk 1 exec c1 ping -c3 -W2 "$ip2" >/dev/null || fail "ping c1 → c2"
dk 1 exec d1 netcheck udp-send "$dip2:9001" PODNET-SECRET-DIRECT >/dev/null || fail "udp d1 → d2 (direct routing)"
host_echo 1 "$ip2" PODNET-SECRET-HOST || fail "h1 itself → c2"
host_echo 1 "$dip2" PODNET-SECRET-HOST-DIRECT || fail "h1 itself → d2 (direct routing)"
host_echo 1 "$dip6" PODNET-SECRET-HOST-V6 || fail "h1 itself → d2 over IPv6"
nodeport || fail "NodePort on h1 → c2 on h2"
sleep 1
kill "$tcpd"
wait "$tcpd" 2>/dev/null
# count FILTER: packets of the capture that match FILTER.
count() { tcpdump -n -r /tmp/cap.pcap "$1" 2>/dev/null | wc -l; }
hosts='ip and src net 10.99.0.0/24 and dst net 10.99.0.0/24 and not host 10.99.0.1'
total=$(count "$hosts")
wgp=$(count "($hosts) and udp port 51820")
[ "$wgp" -gt 10 ] || fail "capture: only $wgp WireGuard packets of $total between hosts"
[ "$wgp" = "$total" ] || fail "capture: $((total - wgp)) packets between hosts outside WireGuard: $(tcpdump -n -r /tmp/cap.pcap "($hosts) and not udp port 51820" 2>/dev/null | head -5)"
[ "$(count 'udp port 4789')" = 0 ] || fail "capture: VXLAN on the underlay"
[ "$(count 'net 10.244.0.0/16 or net 10.245.0.0/16 or net fd00:245::/64')" = 0 ] || fail "capture: pod addresses in clear on the underlay"
grep -aq PODNET-SECRET /tmp/cap.pcap && fail "capture: pod payload crossed the underlay in clear"
say "ok: underlay capture (vxlan, direct routing, NodePort forwarding, h1's own processes): all $total packets between hosts are WireGuard, no VXLAN, no pod address, no payload in clear"

# --- 4. A machine forging h2's address, without a key.
ip netns add evil
ip link add uevil type veth peer name eth0 netns evil
ip link set uevil master lan0 up
ip -n evil link set lo up
# No ARP from the forger (it would take h2's address over on h1 and cut
# h2 off): it reaches h1's MAC through a static entry.
ip -n evil link set eth0 arp off up
ip -n evil addr add "$(host_ip 2)/24" dev eth0
ip -n evil neigh replace "$(host_ip 1)" lladdr "$(host_exec 1 cat /sys/class/net/eth0/address)" dev eth0 nud permanent
evil() { ip netns exec evil "$@"; }
vni=$(host_exec 1 ip -o link show | grep -o 'pnx[0-9]*' | head -1 | tr -d pnx)
mac=$(host_exec 1 cat "/sys/class/net/pnx$vni/address")
evil netcheck vxlan-send "$(host_ip 1):4789" "$vni" "$mac" "$ip2" "$ip1" 9001 forged-vxlan >/dev/null 2>&1
evil ip addr add "$ip2/32" dev eth0
evil ip route add 10.244.0.0/16 via "$(host_ip 1)" src "$ip2"
evil netcheck udp-send "$ip1:9001" forged-direct >/dev/null 2>&1
evil ip route del 10.244.0.0/16
evil ip link add wg0 type wireguard
wg genkey >/tmp/evil.key
evil wg set wg0 private-key /tmp/evil.key listen-port 51820 peer "$k1" endpoint "$(host_ip 1):51820" allowed-ips 10.244.0.0/16
evil ip addr add "$ip2/32" dev wg0 2>/dev/null
evil ip link set wg0 up
evil ip route add 10.244.0.0/16 dev wg0 src "$ip2"
evil netcheck udp-send "$ip1:9001" forged-wireguard >/dev/null 2>&1
dk 2 exec c2 netcheck udp-send "$ip1:9001" after-the-forgeries >/dev/null || fail "c2 → c1 after the forgeries"
wait_until "c1 got c2's datagram sent after the forgeries" 30 logs_have 1 c1 after-the-forgeries
if dk 1 logs c1 2>&1 | grep -q forged; then fail "a forged datagram reached c1: $(dk 1 logs c1 2>&1 | grep forged)"; fi
hs=$(evil wg show wg0 latest-handshakes | awk '{print $2}')
[ "${hs:-0}" = 0 ] || fail "h1 completed a handshake with an unknown key"
ip netns del evil
say "ok: forged VXLAN, forged direct pod source and an unknown WireGuard key injected nothing"

# --- 5. h2's key changes.
podnetd_stop 2
rm /var/lib/podnet-h2/wireguard.key
podnetd_start 2
k2new=$(pubkey 2)
[ -n "$k2new" ] && [ "$k2new" != "$k2" ] || fail "h2's key did not change ('$k2' → '$k2new')"
wait_until "h1 has h2's new key as a peer" 30 peers_are 1 "$k2new" "$k3"
wait_until "h3 has h2's new key as a peer" 30 peers_are 3 "$k1" "$k2new"
fp=$(host_field 2 keyFingerprint)
t0=$(log_ms /tmp/h2-podnetd.log "host registered.*fingerprint=$fp")
t1=$(log_ms /tmp/h1-podnetd.log "wireguard peer set.*host=h2 fingerprint=$fp")
[ -n "$t0" ] && [ -n "$t1" ] || fail "key change not in the logs (h2 registered '$t0', h1 set '$t1')"
# h2 logs the registration once etcd answered its write; h1 may have
# seen the watch event first (a negative lag): both are "within".
lag=$((t1 - t0))
[ "$lag" -lt 1000 ] || fail "h1 took ${lag} ms to pick up h2's new key (want < 1000)"
say "ok: key change picked up by h1 within 1 s (h1's peer set $lag ms after h2's registration was logged)"
wait_until "c1 → c2 with h2's new key" 60 ping_c 1 c1 "$ip2"

# --- 6. podnetd restarts keep an established connection: one nc from c1
# to c2's echo server, fed from a file, carries a line before and after.
dk 1 exec c1 sh -c ': >/in' || fail "c1: /in"
dk 1 exec -d c1 sh -c "busybox tail -f /in | nc $ip2 9000 >/out" || fail "c1: nc to c2"
# shellcheck disable=SC2317
echoed() { dk 1 exec c1 busybox grep -q "$1" /out; }
dk 1 exec c1 sh -c 'echo before-the-restarts >>/in'
wait_until "one TCP connection c1 → c2 carries a line" 30 echoed before-the-restarts
addrs_before=$(pnwg_addrs 1)
logged=$(wc -l </tmp/h1-podnetd.log)
podnetd_stop 1
podnetd_start 1
# shellcheck disable=SC2317
first_pass() { tail -n "+$((logged + 1))" /tmp/h1-podnetd.log | grep "first overlay pass"; }
wait_until "h1's first overlay pass after its restart" 60 first_pass
first_pass | grep -q " changes=0 errors=0 " || fail "h1's restart changed its kernel state: $(first_pass)
$(tail -n "+$((logged + 1))" /tmp/h1-podnetd.log | grep -E 'address (added|removed)|route (added|replaced|removed)' | head -5)"
[ "$(pnwg_addrs 1)" = "$addrs_before" ] || fail "h1's pnwg addresses changed across its restart: '$addrs_before' → '$(pnwg_addrs 1)'"
podnetd_stop 2 KILL
podnetd_start 2
dk 1 exec c1 sh -c 'echo after-the-restarts >>/in'
wait_until "the same connection carries a line after the restarts" 30 echoed after-the-restarts
wait_until "h1 itself → c2 after the restarts" 30 host_echo 1 "$ip2" host-after-restarts
say "ok: one TCP connection c1 → c2 kept across podnetd restarts on h1 (TERM) and h2 (KILL); h1's restart changed nothing in its kernel (tunnel addresses $(echo "$addrs_before" | tr "\n" " ")kept)"

# --- 7. h3 leaves.
podnetd_stop 3 KILL
wait_until "h3's lease expired: h1's peers are h2 only" 60 peers_are 1 "$k2new" ""
wait_until "h2's peers are h1 only" 30 peers_are 2 "$k1" ""
pctl 1 host rm h3 >/dev/null || fail "host rm h3"
pctl 1 host ls | grep -q '^h3 ' && fail "h3 still listed after host rm"
wait_until "c1 → c2 after h3 left" 30 ping_c 1 c1 "$ip2"
say "ok: a host that left is in no peer list"

# --- 8. Removing a network on h1 takes its tunnel addresses off pnwg
# (which stays, for the other network) and its routes away.
dk 1 rm -f d1 >/dev/null || fail "rm d1"
dk 1 network rm direct >/dev/null || fail "h1: network rm direct"
left=$(pnwg_addrs 1)
case " $(echo "$left" | tr "\n" " ") " in
*" $tun1d/"* | *" $tun1v6/"*) fail "the removed network's tunnel addresses remain on h1's pnwg: $left" ;;
*" $tun1/"*) ;;
*) fail "the remaining network's tunnel address $tun1 left h1's pnwg: $left" ;;
esac
host_exec 1 ip route show proto 152 | grep -q '^10\.245\.' && fail "h1 still routes the removed network: $(host_exec 1 ip route show proto 152)"
host_exec 1 ip -6 route show proto 152 | grep -q '^fd00:245:' && fail "h1 still routes the removed network over IPv6: $(host_exec 1 ip -6 route show proto 152)"
wait_until "h1 itself → c2 after the other network went" 30 host_echo 1 "$ip2" host-after-removal
say "ok: removing a network took its tunnel addresses ($tun1d, $tun1v6) off pnwg and its routes away; $tun1 stays"

say "PASS: WireGuard encryption end to end in the guest ($(cut -d' ' -f1 /proc/uptime)s)"
exit 0
