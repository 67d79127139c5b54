// Package dockerid holds the one helper podnet needs for Docker's object
// IDs: their short form, as `docker ps` and `docker network ls` show them.
//
// # Design notes
//
//   - Every log line, error and table that names a network, endpoint or
//     container uses Short, so a user can paste what podnet prints into a
//     docker command (Docker accepts any unique prefix).
//   - Interface names (pn-<network>, pnh<endpoint>, pnc<endpoint>) are built
//     from Short too: ShortLen is therefore an upgrade contract (with the
//     three-letter prefixes it fills IFNAMSIZ's 15 characters) and must
//     never change.
package dockerid

// ShortLen is the length of Docker's short IDs. Never change it: interface
// names depend on it.
const ShortLen = 12

// Short returns the first ShortLen characters of id, or all of a shorter id.
func Short(id string) string {
	if len(id) > ShortLen {
		return id[:ShortLen]
	}
	return id
}
