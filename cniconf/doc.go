// Package cniconf is the configuration of podnet's CNI plugin: the one
// type the plugin parses from a runtime (NetConf, with the capability
// arguments and CNI_ARGS it honours) and podnetd writes for `podnetctl
// cni-config` (ConfList).
//
// # Design notes
//
//   - A network is named by its subnet. The conflist's "name" is the
//     runtime's name for it; "subnet" (the podnet network's first subnet)
//     is what podnetd looks the network up by, because a pool is the
//     identity of a podnet network on every host while Docker's network
//     IDs differ per host. The same conflist therefore works on every
//     host of a cluster (a kubelet's conflist is usually copied around).
//   - Capabilities: portMappings (published ports, as docker run -p),
//     ips and mac (a requested address and MAC; CNI_ARGS IP= and MAC=
//     too, as podman passes them), aliases (extra DNS names; a list, as
//     CNI's conventions say, or podman's map of network to names). The
//     container's name comes from CNI_ARGS K8S_POD_NAME, where podman
//     puts the container name and a kubelet the pod's.
//   - Versions: 1.1.0 by default (GC and STATUS); 1.0.0 for runtimes on
//     an older libcni, such as podman 4 (its libcni cannot read 1.1.0
//     results); 0.3.1 and 0.4.0 for old runtimes (results are converted
//     by the CNI library).
//   - This package imports only the CNI library's types, so podnetd and
//     the plugin share it without pulling each other's code in.
package cniconf
