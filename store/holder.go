package store

import "net/netip"

// Holder identifies the one podnetd process that holds a host name: what
// another podnetd started with the same --host-name needs to refuse to
// start with a useful message, and to tell a running holder from one that
// died without revoking its lease (kill -9).
type Holder struct {
	// Instance is random per process start.
	Instance string `json:"instance"`
	// Addr is the host's underlay address (zero without multi-host).
	Addr netip.Addr `json:"addr,omitzero"`
	// Machine is the system hostname of the machine podnetd runs on.
	Machine string `json:"machine,omitempty"`
	// Boot (the kernel's boot ID), PIDNS (the PID namespace) and PID with
	// its start time (clock ticks after boot) identify the process: on the
	// same machine and PID namespace, another podnetd can check whether it
	// still runs.
	Boot     string `json:"boot,omitempty"`
	PIDNS    string `json:"pidns,omitempty"`
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pidStart,omitempty"`
}
