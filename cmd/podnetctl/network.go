package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/spf13/cobra"
)

func (c *cli) networkCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "podnet networks: this host's, or the cluster's definitions"}
	var clusterView bool
	ls := c.printing(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list this host's podnet networks (--cluster: every definition and the hosts that have it)",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			if clusterView {
				ls, err := c.clusterNetworks(ctx)
				if err != nil {
					return err
				}
				return c.printClusterNetworks(ls)
			}
			var ns []admin.Network
			if err := c.client().Get(ctx, "/v1/networks", &ns); err != nil {
				return err
			}
			return c.print(ns, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NETWORK ID\tMODE\tINTERFACE\tSUBNETS\tGATEWAYS\tMTU\tFLAGS")
				for _, n := range ns {
					var subs, gws, flags []string
					for _, s := range append(n.IPv4, n.IPv6...) {
						subs = append(subs, s.Pool.String())
						if s.Gateway.IsValid() {
							gws = append(gws, s.Gateway.Addr().String())
						}
					}
					if n.Internal {
						flags = append(flags, "internal")
					}
					if !n.Masquerade {
						flags = append(flags, "no-masquerade")
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", dockerid.Short(n.ID), n.Mode, dash(n.Bridge),
						dash(strings.Join(subs, ",")), dash(strings.Join(gws, ",")), n.MTU, dash(strings.Join(flags, ",")))
				}
			})
		},
	})
	ls.Flags().BoolVar(&clusterView, "cluster", false, "list the cluster-wide network definitions instead")
	cmd.AddCommand(ls, c.networkCreateCmd(), c.networkRmCmd())
	return cmd
}

func (c *cli) endpointCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint", Short: "podnet endpoints (container attachments) on this host"}
	cmd.AddCommand(c.printing(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list endpoints with their addresses and published ports",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var es []admin.Endpoint
			if err := c.client().Get(ctx, "/v1/endpoints", &es); err != nil {
				return err
			}
			return c.print(es, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ENDPOINT ID\tNETWORK ID\tIPV4\tIPV6\tMAC\tINTERFACE\tPORTS")
				for _, e := range es {
					var ps []string
					for _, p := range e.Ports {
						host := "*"
						if p.HostIP.IsValid() {
							host = p.HostIP.String()
						}
						ps = append(ps, fmt.Sprintf("%s:%d->%d/%s", host, p.HostPort, p.ContainerPort, p.Proto))
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dockerid.Short(e.ID), dockerid.Short(e.Network), dashIP(e.IPv4),
						dashIP(e.IPv6), dash(e.MAC), dash(e.HostVeth), dash(strings.Join(ps, ", ")))
				}
			})
		},
	}))
	return cmd
}
