package main

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

// cniConfigCmd prints the CNI network configuration list of a podnet
// network, for podman, containerd or a kubelet (podnetd writes it: it
// knows the network's subnet, its admin socket and the CNI versions the
// plugin speaks).
func (c *cli) cniConfigCmd() *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:   "cni-config NETWORK",
		Short: "print the CNI conflist that attaches CNI runtimes (podman, kubelets) to a podnet network",
		Long: "Print the CNI network configuration list for NETWORK: a podnet Docker network on this host, " +
			"or a network defined with `podnetctl network create`. Put it in the runtime's CNI configuration " +
			"directory (e.g. /etc/cni/net.d/NETWORK.conflist); `make install` puts the plugin in /opt/cni/bin. " +
			"Podman 4 needs --cni-version 1.0.0.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			path := "/v1/cni/config/" + url.PathEscape(args[0])
			if version != "" {
				path += "?cniVersion=" + url.QueryEscape(version)
			}
			var conf json.RawMessage
			if err := c.client().Get(ctx, path, &conf); err != nil {
				return err
			}
			b, err := json.MarshalIndent(conf, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.out, string(b))
			return err
		},
	}
	cmd.Flags().StringVar(&version, "cni-version", "", "CNI version of the list (default 1.1.0; podman 4: 1.0.0)")
	return cmd
}
