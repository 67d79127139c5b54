// Command podnetd is podnet's per-host daemon: the Docker network and IPAM
// plugin, the NAT engine, the reconciler and the admin API.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "podnetd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	cfg := defaultConfig()
	root := &cobra.Command{
		Use:           "podnetd",
		Short:         "podnet daemon: Docker network + IPAM plugin with etcd-backed state",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), cfg)
		},
	}
	cfg.bind(root)
	root.AddCommand(&cobra.Command{
		Use:   "cleanup",
		Short: "remove every kernel object podnet programmed on this host (nftables table, iptables chain, pn-* links); etcd is left alone",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cleanup(cmd.Context(), cfg)
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print the version",
		Run:   func(*cobra.Command, []string) { fmt.Println(version) },
	})
	return root
}

func newLogger(level, format, output string) (*slog.Logger, error) {
	w := os.Stderr
	switch output {
	case "stderr":
	case "stdout":
		w = os.Stdout
	default:
		return nil, fmt.Errorf("--log-output %q: want stderr or stdout", output)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
