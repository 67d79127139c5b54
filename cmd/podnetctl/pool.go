package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

type blockView struct {
	CIDR string `json:"cidr"`
	Host string `json:"host"`
	Used int    `json:"used"`
}

type poolView struct {
	Pool      string      `json:"pool"`
	IPRange   string      `json:"ipRange"`
	V6        bool        `json:"v6"`
	Auto      bool        `json:"auto"`
	Gateway   string      `json:"gateway"`
	Hosts     []string    `json:"hosts"`
	Blocks    []blockView `json:"blocks"`
	Allocated int         `json:"allocated"`
}

func (c *cli) poolCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "address pools (cluster-wide, from etcd)"}
	cmd.AddCommand(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list pools with their gateway, hosts, blocks and allocated addresses",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var ps []poolView
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
					pool := p.Pool
					if p.Auto {
						pool += " (auto)"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", pool, dash(p.IPRange), dash(p.Gateway),
						dash(strings.Join(p.Hosts, ",")), dash(strings.Join(bs, " ")), p.Allocated)
				}
			})
		},
	})
	return cmd
}
