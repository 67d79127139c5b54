package main

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/netspec"
	"github.com/spf13/cobra"
)

func (c *cli) clusterNetworks(ctx context.Context) ([]admin.NetworkStatus, error) {
	var ls []admin.NetworkStatus
	err := c.client().Get(ctx, "/v1/cluster/networks", &ls)
	return ls, err
}

// defaultClusterMode is network create's mode when neither --mode nor -o
// mode= is given: a cluster-wide network spans hosts.
const defaultClusterMode = netspec.ModeVXLAN

func (c *cli) networkCreateCmd() *cobra.Command {
	var (
		mode, gateway, ipRange string
		parent                 string
		subnets, opts, parents []string
		mtu, vni               int
		internal               bool
		wait                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME --subnet CIDR [--mode vxlan] [-o KEY=VALUE]... [flags]",
		Short: "define a network once for the whole cluster: every podnetd creates it on its host",
		Long: "Define a network once for the whole cluster: every podnetd creates it on its host.\n\n" +
			"Driver options are given as with docker network create: -o/--opt KEY=VALUE, repeatable\n" +
			"(e.g. -o podnet.direct-routing=true). podnetd checks them with the driver's own rules before\n" +
			"storing anything, so a typo is refused here instead of failing on every host.\n\n" +
			"macvlan and ipvlan networks need --parent IFACE (the same as -o parent=IFACE): the interface\n" +
			"on the LAN, on every host but those --host-parent HOST=IFACE names otherwise.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := parseOpts(opts)
			if err != nil {
				return err
			}
			spec := admin.NetworkSpec{Name: args[0], Mode: mode, Subnets: subnets, MTU: mtu, VNI: vni, Options: o, Internal: internal,
				Parent: parent}
			if spec.Parents, err = parseHostParents(parents); err != nil {
				return err
			}
			if _, given := o[netspec.OptMode]; given && !cmd.Flags().Changed("mode") {
				spec.Mode = "" // -o mode=M alone decides
			}
			if len(subnets) > 0 && gateway != "" {
				spec.Gateways = map[string]string{subnets[0]: gateway}
			}
			if len(subnets) > 0 && ipRange != "" {
				spec.IPRanges = map[string]string{subnets[0]: ipRange}
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
			defer cancel()
			if err := c.client().Post(ctx, "/v1/cluster/networks", spec, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "network %s defined; waiting for every live host to create it\n", args[0])
			return c.waitNetwork(ctx, args[0], wait, func(n *admin.NetworkStatus) (bool, string) {
				if n == nil {
					return false, "definition not visible yet"
				}
				if len(n.Missing) == 0 {
					return true, fmt.Sprintf("network %s is on %d host(s): %s", n.Name, len(n.Hosts), strings.Join(sortedKeys(n.Hosts), ", "))
				}
				return false, "still missing on " + strings.Join(n.Missing, ", ")
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", defaultClusterMode, "network mode: "+strings.Join(netspec.Implemented(), ", "))
	f.StringVar(&parent, "parent", "", "macvlan/ipvlan: the interface on the LAN (IFACE, or IFACE.VLAN to have podnet create the VLAN), the same on every host unless --host-parent says otherwise")
	f.StringArrayVar(&parents, "host-parent", nil, "macvlan/ipvlan: HOST=IFACE, the parent on one host (repeatable)")
	f.StringSliceVar(&subnets, "subnet", nil, "subnet in CIDR form (repeatable)")
	f.StringVar(&gateway, "gateway", "", "gateway of the first subnet")
	f.StringVar(&ipRange, "ip-range", "", "dynamic-allocation range of the first subnet")
	f.IntVar(&mtu, "mtu", 0, "MTU (default: vxlan = underlay MTU - 50, bridge = 1500, macvlan/ipvlan = each host's parent's)")
	f.IntVar(&vni, "vni", 0, "VXLAN network identifier (default: allocated)")
	f.StringArrayVarP(&opts, "opt", "o", nil, "driver option KEY=VALUE (repeatable), as with docker network create")
	f.BoolVar(&internal, "internal", false, "no traffic to or from outside the network")
	f.DurationVar(&wait, "wait", 60*time.Second, "how long to wait for every host")
	return cmd
}

// parseOpts reads -o/--opt KEY=VALUE values. Without "=" the value is not
// a driver option: most likely an output format given out of habit.
func parseOpts(opts []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range opts {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			return nil, fmt.Errorf("-o/--opt %q: want KEY=VALUE (on network create, -o is a driver option, as with docker network create; it has no output format)", kv)
		}
		if prev, dup := out[k]; dup && prev != v {
			return nil, fmt.Errorf("-o/--opt %s is given twice (%s and %s): give it once", k, prev, v)
		}
		out[k] = v
	}
	return out, nil
}

// parseHostParents reads --host-parent HOST=IFACE values.
func parseHostParents(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		h, p, ok := strings.Cut(kv, "=")
		if !ok || h == "" || p == "" {
			return nil, fmt.Errorf("--host-parent %q: want HOST=IFACE", kv)
		}
		if prev, dup := out[h]; dup && prev != p {
			return nil, fmt.Errorf("--host-parent %s is given twice (%s and %s): give it once", h, prev, p)
		}
		out[h] = p
	}
	return out, nil
}

func (c *cli) networkRmCmd() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "remove a network defined with podnetctl network create from every host",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
			defer cancel()
			if err := c.client().Delete(ctx, "/v1/cluster/networks/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			return c.waitNetwork(ctx, args[0], wait, func(n *admin.NetworkStatus) (bool, string) {
				if n == nil {
					return true, "network " + args[0] + " removed from every host"
				}
				return false, "still present on " + strings.Join(sortedKeys(n.Hosts), ", ")
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 60*time.Second, "how long to wait for every host")
	return cmd
}

// waitNetwork polls the cluster view of network name until done says so
// or wait passes; it prints done's last message either way.
func (c *cli) waitNetwork(ctx context.Context, name string, wait time.Duration, done func(*admin.NetworkStatus) (bool, string)) error {
	deadline := time.Now().Add(wait)
	for {
		ls, err := c.clusterNetworks(ctx)
		if err != nil {
			return err
		}
		var n *admin.NetworkStatus
		for i := range ls {
			if ls[i].Name == name {
				n = &ls[i]
			}
		}
		ok, msg := done(n)
		if ok {
			fmt.Fprintln(c.out, msg)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %s (hosts that are down catch up when they return)", wait, msg)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (c *cli) printClusterNetworks(ls []admin.NetworkStatus) error {
	return c.print(ls, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tMODE\tSUBNETS\tVNI\tMTU\tHOSTS\tSTATE")
		for _, n := range ls {
			state := "ok"
			if n.Deleting {
				state = "removing"
			} else if len(n.Missing) > 0 {
				state = "missing on " + strings.Join(n.Missing, ",")
			}
			vni := "-"
			if n.VNI != 0 {
				vni = fmt.Sprint(n.VNI)
			}
			mtu := "auto"
			if n.MTU != 0 {
				mtu = fmt.Sprint(n.MTU)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(n.Name), n.Mode, netspec.JoinPrefixes(n.Subnets, ","), vni, mtu,
				dash(strings.Join(sortedKeys(n.Hosts), ",")), state)
		}
	})
}

func (c *cli) hostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "hosts of the cluster"}
	cmd.AddCommand(c.printing(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list hosts: underlay address, liveness, encryption and key fingerprint, blocks, endpoints",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var hs []admin.HostStatus
			if err := c.client().Get(ctx, "/v1/cluster/hosts", &hs); err != nil {
				return err
			}
			return c.print(hs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "HOST\tUNDERLAY\tSTATE\tVERSION\tENCRYPTION\tKEY\tBLOCKS\tENDPOINTS")
				for _, h := range hs {
					state := "DOWN"
					if h.Alive {
						state = "up " + time.Since(h.Started).Round(time.Second).String()
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", h.Name, dashIP(h.Underlay), state, dash(h.Version),
						dash(h.Encryption), dash(h.KeyFingerprint), dash(netspec.JoinPrefixes(h.Blocks, " ")), h.Endpoints)
				}
			})
		},
	}))
	cmd.AddCommand(&cobra.Command{
		Use:   "rm NAME",
		Short: "forget a host that is gone for good: release its blocks and addresses",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			if err := c.client().Delete(ctx, "/v1/cluster/hosts/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "host %s removed; its blocks and addresses are free again\n", args[0])
			return nil
		},
	})
	return cmd
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
