package store

import (
	"context"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// MemberURLs returns the client and peer URLs of every member of the etcd
// cluster (etcdctl member list), sorted, without duplicates: what podnet
// keeps containers away from (the data plane's guard), learned from the cluster
// itself because the endpoints podnetd is given name client ports only.
func (s *Store) MemberURLs(ctx context.Context) ([]string, error) {
	var resp *clientv3.MemberListResponse
	_, err := s.call(ctx, "member list", "", func(c context.Context) (err error) {
		resp, err = s.cli.MemberList(c)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range resp.Members {
		out = append(out, m.ClientURLs...)
		out = append(out, m.PeerURLs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
