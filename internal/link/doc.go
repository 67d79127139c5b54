// Package link is the small shared netlink seam of podnet: idempotent
// Ensure*/Delete* helpers for the links driver and overlay create, dumps
// that retry when the kernel interrupts them, and sysctl writes. It holds a
// *netlink.Handle, so the same code runs against the host namespace in
// podnetd and against a throwaway namespace in tests.
//
// # Design notes
//
//   - Ensure* creates or verifies: an existing link of the right kind is
//     adjusted (MTU, addresses, up), one of the wrong kind is an error that
//     names it — never silently deleted, it may be someone else's.
//   - Delete* tolerates absence: Docker may tear a container's namespace
//     down first, and the veth peer dies with it.
//   - Netlink dumps can return ErrDumpInterrupted when the table changed
//     during the dump; the result may be partial, so they are retried.
//   - Sysctls are written through a configurable /proc/sys root because a
//     managed plugin sees the host's /proc/sys at another path.
package link
