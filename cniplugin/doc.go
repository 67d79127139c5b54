// Package cniplugin is podnet's CNI plugin (cmd/podnet-cni, installed as
// "podnet"): each CNI command is one call to the local podnetd's admin
// socket (package cniattach does the work), plus, for ADD, CHECK and DEL,
// the container's side of the veth pair, which only the runtime's
// namespace path reaches.
//
// # Design notes
//
//   - Why the plugin touches the container at all. podnetd makes the
//     veth pair in the host namespace, as it does for Docker, and the
//     plugin, like dockerd, moves the peer into the container, names it
//     (CNI_IFNAME) and gives it the addresses and routes podnetd chose.
//     netlink handles bound to the container's namespace do it without
//     switching the thread's namespace. IPv6 addresses skip duplicate
//     address detection (the address is podnet's alone), so they work at
//     once.
//   - ADD undoes podnetd's part (a DEL) when the container's part fails:
//     a failed ADD leaves nothing.
//   - DEL while podnetd is down still succeeds: the plugin deletes the
//     container's interface (its host end goes with it) so the runtime can
//     remove the container, and podnetd's sweep releases the attachment
//     when it returns. Any other DEL failure is podnetd's answer, returned.
//   - Errors carry CNI codes by what happened, not by text: podnetd
//     unreachable (admin.UnreachableError) is 11 (try again later) for
//     attachments and 50 (not available) for STATUS, naming podnetd and
//     its socket; podnetd's own refusals are 999 with its message; bad
//     configuration 7.
//   - CHECK compares the previous result's addresses with podnetd's
//     record and verifies the container's interface, MAC, addresses and
//     routes; podnetd verifies the host side (record, address
//     reservation, interface on the bridge).
//   - The plugin links no etcd, Docker or podnetd machinery (a test keeps
//     it so): runtimes run a copy per container start.
package cniplugin
