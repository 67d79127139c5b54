package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/podnet/podnet/admin"
	"github.com/spf13/cobra"
)

// encryptionCmd shows and switches the cluster's encryption between hosts.
func (c *cli) encryptionCmd() *cobra.Command {
	cmd := c.printing(&cobra.Command{
		Use:   "encryption",
		Short: "the cluster's encryption between hosts (podnetd --encryption) and each host's",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var e admin.Encryption
			if err := c.client().Get(ctx, "/v1/cluster/encryption", &e); err != nil {
				return err
			}
			return c.print(e, func(w *tabwriter.Writer) { printEncryption(w, e) })
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "set none|wireguard",
		Short: "switch the cluster's encryption; then restart each podnetd with the same --encryption",
		Long: "Switch the cluster's encryption between hosts. Running podnetds keep their mode; restart each with\n" +
			"--encryption MODE (PODNET_ENCRYPTION in /etc/default/podnet). A podnetd started with another mode\n" +
			"refuses to. Until both ends of a path run the same mode no traffic passes between them (fail closed):\n" +
			"an encrypted host never sends to, nor accepts from, a host in clear.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var e admin.Encryption
			if err := c.client().Post(ctx, "/v1/cluster/encryption", admin.Encryption{Mode: args[0]}, &e); err != nil {
				return err
			}
			var pending []string
			for _, h := range sortedKeys(e.Hosts) {
				if e.Hosts[h] != e.Mode {
					pending = append(pending, h)
				}
			}
			fmt.Fprintf(c.out, "cluster encryption is now %s\n", e.Mode)
			if len(pending) > 0 {
				fmt.Fprintf(c.out, "restart podnetd with --encryption %s on: %s (no traffic passes between hosts of different modes meanwhile)\n",
					e.Mode, strings.Join(pending, ", "))
			}
			return nil
		},
	})
	return cmd
}

func printEncryption(w *tabwriter.Writer, e admin.Encryption) {
	fmt.Fprintf(w, "cluster\t%s\t%s\n", e.Mode, dash(e.RecordedBy))
	for _, h := range sortedKeys(e.Hosts) {
		note := ""
		if e.Hosts[h] != e.Mode {
			note = "restart with --encryption " + e.Mode
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", h, e.Hosts[h], note)
	}
}
