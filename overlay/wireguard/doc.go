// Package wireguard is podnet's WireGuard device on a host (pnwg): the
// private key in the data dir, the device made and checked through
// netlink, and its peers set and read through wgctrl (the kernel's
// WireGuard over generic netlink). What the peers are — which hosts,
// which allowed IPs — is the overlay's business (overlay/encrypt.go);
// this package only carries it out.
//
// Files: key.go (LoadOrCreateKey, Fingerprint), device.go (Device,
// Ensure, Delete, Peer), peers.go (Peers, SetPeer, RemovePeer).
//
// # Design notes
//
// The key never leaves the host. It is made with wgtypes'
// GeneratePrivateKey into <data-dir>/wireguard.key, mode 0600 in a 0700
// directory, written to a temporary file and renamed; only the public key
// goes into the host record. A key file others can read is tightened to
// 0600 (the key is not known to have leaked; replacing it is one rm and
// a restart away); a file that is no key is refused naming it.
//
// Kernel only. Ensure creates the link with netlink (ip link add pnwg
// type wireguard), which fails with EOPNOTSUPP on a kernel without
// WireGuard: that becomes ErrNoKernelSupport, naming CONFIG_WIREGUARD,
// and podnetd refuses to start rather than run in clear. There is no
// userspace fallback (wireguard-go): its throughput is a fraction of the
// kernel's and it would be one more daemon to keep alive.
//
// Restarts change nothing. An existing pnwg with this host's key and port
// is left as it is, peers and sessions included; only a wrong key or port
// is corrected (a data dir restored from elsewhere), with a warning.
//
// Peers as data. SetPeer replaces one peer's endpoint and allowed IPs in
// one call (ReplaceAllowedIPs); the kernel keeps each allowed prefix on
// exactly one peer, so giving a prefix to a new owner takes it from the
// old one. RemovePeer drops a peer and its sessions: nothing signed with
// its key is accepted afterwards. A handshake from a key that is no
// peer's is ignored by the kernel, so an unknown key injects nothing.
//
// MTU. The device's MTU is the underlay's minus Overhead (60: IPv4 20,
// UDP 8, data header 16, tag 16).
package wireguard
