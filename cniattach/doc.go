// Package cniattach is podnetd's side of podnet's CNI plugin: it turns
// the plugin's ADD, DEL, CHECK, GC and STATUS (admin API routes
// /v1/cni/*, wire types in package admin) into the steps Docker's
// container starts take, so containers of podman, containerd or a
// kubelet share pools, overlay, names, published ports, services (and
// network policies) with Docker's; it writes `podnetctl cni-config`'s
// configuration (Names.ConfList); and Follower follows podman's API for
// the labels CNI does not carry.
//
// # Design notes
//
//   - One machinery. ADD is IPAM's RequestAddress (this host's blocks,
//     exception records, --ip) and the driver's Attach (the veth pair on
//     the network's bridge, the published ports, one etcd transaction for
//     the endpoint, its address ownership and the container's metadata);
//     DEL is the driver's Detach and IPAM's ReleaseAddress. podnetd makes
//     the pair in the host namespace and the plugin moves the peer into
//     the container, as dockerd does for Docker's endpoints: podnetd never
//     enters a container's namespace, and a runtime whose namespaces
//     podnetd cannot see (another mount namespace) works the same.
//   - Identity. CNI names an attachment by network name, container ID and
//     interface name; the endpoint ID is a hash of the three in Docker's
//     form (64 hex digits), so a retried ADD finds its attachment, a DEL
//     after a podnetd restart finds the record, and every name derived
//     from endpoint IDs (pnh…, pnc…) works unchanged. The network is named
//     by its first subnet (package cniconf), which is the same on every
//     host where Docker's network IDs differ.
//   - Failure leaves nothing. A failed allocation releases what it took,
//     a failed Attach releases the addresses, and the plugin asks for a
//     DEL when it cannot configure the container. What a crash leaves
//     (podnetd killed between IPAM and the record, or before answering;
//     the runtime killed before its DEL) is found without the runtime:
//     an address without an endpoint by the reconciler's address GC, an
//     endpoint whose host veth is gone (the kernel deletes the pair with
//     the container's namespace) or whose peer never left the host by
//     Sweep (driver.DeadAttachments), both after --gc-grace and at once
//     with podnetctl gc. Requests for one attachment are serialized; GC
//     and Sweep skip an attachment a request holds.
//   - Docker's agents leave CNI attachments alone: the endpoint record
//     carries the CNI triple (store.CNIAttachment), so Docker's GC keeps
//     it, and its metadata carries Runtime "cni", so the Docker watcher
//     neither rewrites nor deletes it.
//   - Names. The container's name (CNI_ARGS K8S_POD_NAME: podman passes
//     the container's name, a kubelet the pod's) and aliases (the aliases
//     capability) are written with the endpoint, so the cluster DNS
//     answers them from the first packet; results carry the cluster DNS
//     and the service domain for the runtime's resolv.conf.
//   - Labels: following podman's API. CNI passes no labels, and the
//     plugin cannot ask podman during ADD (podman holds the container's
//     lock while it runs the plugin). podman serves a Docker-compatible
//     API (podman system service), so Follower watches it like the Docker
//     watcher watches Docker: container events and a periodic resync,
//     matching containers to attachments by container ID, and writes the
//     labels and readiness (running, paused, health) into the
//     attachment's metadata, conditioned on the record being unchanged
//     since read. It never removes anything (podman's DEL does; and an
//     attachment of a container podman does not know belongs to another
//     runtime). Without podman's API the containers resolve by name but
//     no service selects them. A kubelet's pods would need the API
//     server's labels: not followed.
//   - Limits: bridge and vxlan networks only (macvlan/ipvlan attachments
//     would need the container's namespace to tell they are dead), on
//     hosts where the network exists, that is where Docker created it.
package cniattach
