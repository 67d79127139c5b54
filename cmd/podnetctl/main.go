// Command podnetctl talks to the local podnetd over its admin socket.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd(os.Stdout).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "podnetctl:", err)
		os.Exit(1)
	}
}

type cli struct {
	socket string
	output outputFormat
	out    io.Writer
}

func (c *cli) client() *admin.Client { return admin.NewClient(c.socket) }

func (c *cli) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 90*time.Second)
}

func newRootCmd(out io.Writer) *cobra.Command {
	c := &cli{output: formatTable, out: out}
	root := &cobra.Command{
		Use:           "podnetctl",
		Short:         "inspect and operate the local podnetd",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	def := admin.DefaultSocket
	if v := os.Getenv("PODNET_SOCKET"); v != "" {
		def = v
	}
	root.PersistentFlags().StringVar(&c.socket, "socket", def, "podnetd admin socket (env PODNET_SOCKET)")
	root.AddCommand(c.statusCmd(), c.networkCmd(), c.endpointCmd(), c.poolCmd(), c.hostCmd(), c.gcCmd(),
		c.serviceCmd(), c.policyCmd(), c.applyCmd(), c.deleteCmd(), c.cniConfigCmd(), c.lbPoolCmd(), c.bgpPeerCmd(), c.bgpCmd(), c.encryptionCmd())
	return root
}

// print writes v as JSON with -o json, else calls table with a tabwriter.
func (c *cli) print(v any, table func(w *tabwriter.Writer)) error {
	switch c.output {
	case formatJSON:
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case formatYAML:
		return c.printYAML(v)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func (c *cli) statusCmd() *cobra.Command {
	return c.printing(&cobra.Command{
		Use:   "status",
		Short: "show podnetd's state and etcd health",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var s admin.Status
			if err := c.client().Get(ctx, "/v1/status", &s); err != nil {
				return err
			}
			return c.print(s, func(w *tabwriter.Writer) {
				etcd := "healthy"
				if !s.EtcdHealthy {
					etcd = "UNHEALTHY: " + s.EtcdError
				}
				kind := "external"
				if s.EtcdEmbedded {
					kind = "embedded"
				}
				fmt.Fprintf(w, "host:\t%s\n", s.Host)
				fmt.Fprintf(w, "version:\t%s\n", s.Version)
				fmt.Fprintf(w, "up since:\t%s\n", s.Started.Format(time.RFC3339))
				fmt.Fprintf(w, "plugin socket:\t%s\n", s.PluginSocket)
				fmt.Fprintf(w, "modes:\t%v\n", s.Modes)
				fmt.Fprintf(w, "etcd:\t%s (%s, %v)\n", etcd, kind, s.EtcdEndpoints)
				fmt.Fprintf(w, "networks:\t%d\n", s.Networks)
				fmt.Fprintf(w, "endpoints:\t%d\n", s.Endpoints)
			})
		},
	})
}

func (c *cli) gcCmd() *cobra.Command {
	var grace string
	cmd := c.printing(&cobra.Command{
		Use:   "gc",
		Short: "reconcile with Docker now: release what Docker no longer uses",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			path := "/v1/gc"
			if grace != "" {
				path += "?grace=" + url.QueryEscape(grace)
			}
			var r admin.GCReport
			if err := c.client().Post(ctx, path, nil, &r); err != nil {
				return err
			}
			return c.print(r, func(w *tabwriter.Writer) { gcTable(w, r) })
		},
	})
	cmd.Flags().StringVar(&grace, "grace", "", "remove only what is older than this (default: podnetd's --gc-grace); 0s when no container start is in flight")
	return cmd
}
