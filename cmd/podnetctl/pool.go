package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/podnet/podnet/admin"
	"github.com/spf13/cobra"
)

func (c *cli) poolCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "address pools (cluster-wide, from etcd)"}
	cmd.AddCommand(c.printing(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list pools with their gateway, hosts, blocks and allocated addresses",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var ps []admin.Pool
			if err := c.client().Get(ctx, "/v1/pools", &ps); err != nil {
				return err
			}
			return c.print(ps, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "POOL\tIP RANGE\tGATEWAY\tHOSTS\tBLOCKS\tALLOCATED")
				for _, p := range ps {
					var bs []string
					for _, b := range p.Blocks {
						bs = append(bs, fmt.Sprintf("%s@%s(%d)", b.CIDR, b.Host, b.Used))
					}
					pool := p.Pool.String()
					if p.Auto {
						pool += " (auto)"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", pool, dashIP(p.IPRange), dashIP(p.Gateway),
						dash(strings.Join(p.Hosts, ",")), dash(strings.Join(bs, " ")), p.Allocated)
				}
			})
		},
	}))
	return cmd
}
