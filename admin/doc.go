// Package admin is podnetd's local admin API, served on a unix socket
// (/run/podnet/podnet.sock, root only) and spoken by podnetctl: JSON over
// HTTP, GET for reads, POST for actions.
//
// # Design notes
//
//   - A unix socket with mode 0600 is the authentication: whoever can open
//     it is root on this host, like docker.sock.
//   - The server is a thin routing layer over functions podnetd wires in
//     (Routes); it imports no other podnet package, so podnetctl links only
//     this package and the view types it decodes.
//   - Errors travel as {"error": msg} with a 4xx/5xx status and reach the
//     user verbatim through podnetctl.
package admin
