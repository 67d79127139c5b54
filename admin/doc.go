// Package admin is podnetd's local admin API, served on a unix socket
// (/run/podnet/podnet.sock, root only) and spoken by podnetctl: JSON over
// HTTP, GET for reads, POST for actions.
//
// # Design notes
//
//   - A unix socket with mode 0600 is the authentication: whoever can open
//     it is root on this host, like docker.sock.
//   - The server is a thin routing layer over functions podnetd wires in
//     (Routes); it imports no other podnet package and only the standard
//     library, so podnetctl links it without the etcd client (a test in
//     cmd/podnetctl keeps it so).
//   - The wire types (types.go) are defined here once and used by both
//     ends: podnetd's cluster and ipam packages answer with them, podnetd
//     copies its host records into Network and Endpoint, podnetctl decodes
//     them. Addresses and prefixes are netip values; the JSON of the types
//     that mirror etcd records is the records' own (tests in cmd/podnetd and
//     cluster compare them byte for byte).
//   - Errors travel as {"error": msg} with a 4xx/5xx status and reach the
//     user verbatim through podnetctl.
package admin
