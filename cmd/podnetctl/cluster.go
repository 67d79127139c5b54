package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// lnetView and hostView mirror cluster.NetworkStatus and
// cluster.HostStatus as the admin API sends them. They are copies on
// purpose: importing cluster would link the etcd client into podnetctl
// and triple its size, for two structs.
type lnetView struct {
	Name     string            `json:"name"`
	Subnets  []string          `json:"subnets"`
	Mode     string            `json:"mode"`
	MTU      int               `json:"mtu"`
	VNI      int               `json:"vni"`
	Options  map[string]string `json:"options"`
	Internal bool              `json:"internal"`
	Deleting bool              `json:"deleting"`
	Hosts    map[string]string `json:"hosts"`
	Missing  []string          `json:"missing"`
}

type hostView struct {
	Name      string    `json:"name"`
	Underlay  string    `json:"underlay"`
	Alive     bool      `json:"alive"`
	Started   time.Time `json:"started"`
	Version   string    `json:"version"`
	Blocks    []string  `json:"blocks"`
	Endpoints int       `json:"endpoints"`
}

func (c *cli) clusterNetworks(ctx context.Context) ([]lnetView, error) {
	var ls []lnetView
	err := c.client().Get(ctx, "/v1/cluster/networks", &ls)
	return ls, err
}

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
		Use:   "create NAME --subnet CIDR [--mode vxlan] [flags]",
		Short: "define a network once for the whole cluster: every podnetd creates it on its host",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			spec := map[string]any{"name": args[0], "mode": mode, "subnets": subnets, "mtu": mtu, "vni": vni, "internal": internal}
			o := map[string]string{}
			for _, kv := range opts {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--opt %q: want key=value", kv)
				}
				o[k] = v
			}
			spec["options"] = o
			if parent != "" {
				spec["parent"] = parent
			}
			if len(parents) > 0 {
				hp := map[string]string{}
				for _, kv := range parents {
					h, p, ok := strings.Cut(kv, "=")
					if !ok || h == "" || p == "" {
						return fmt.Errorf("--host-parent %q: want HOST=IFACE", kv)
					}
					hp[h] = p
				}
				spec["parents"] = hp
			}
			if len(subnets) > 0 && gateway != "" {
				spec["gateways"] = map[string]string{subnets[0]: gateway}
			}
			if len(subnets) > 0 && ipRange != "" {
				spec["ipRanges"] = map[string]string{subnets[0]: ipRange}
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
			defer cancel()
			if err := c.client().Post(ctx, "/v1/cluster/networks", spec, nil); err != nil {
				return err
			}
			fmt.Printf("network %s defined; waiting for every live host to create it\n", args[0])
			return c.waitNetwork(ctx, args[0], wait, func(n *lnetView) (bool, string) {
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
	f.StringVar(&mode, "mode", "vxlan", "bridge, vxlan, macvlan, ipvlan or none")
	f.StringVar(&parent, "parent", "", "macvlan/ipvlan: the interface on the LAN (IFACE, or IFACE.VLAN to have podnet create the VLAN), the same on every host unless --host-parent says otherwise")
	f.StringArrayVar(&parents, "host-parent", nil, "macvlan/ipvlan: HOST=IFACE, the parent on one host (repeatable)")
	f.StringSliceVar(&subnets, "subnet", nil, "subnet in CIDR form (repeatable)")
	f.StringVar(&gateway, "gateway", "", "gateway of the first subnet")
	f.StringVar(&ipRange, "ip-range", "", "dynamic-allocation range of the first subnet")
	f.IntVar(&mtu, "mtu", 0, "MTU (default: vxlan = underlay MTU - 50, bridge = 1500, macvlan/ipvlan = each host's parent's)")
	f.IntVar(&vni, "vni", 0, "VXLAN network identifier (default: allocated)")
	f.StringArrayVar(&opts, "opt", nil, "driver option key=value (repeatable), e.g. --opt podnet.direct-routing=true, --opt macvlan_mode=bridge, --opt podnet.host-access=true")
	f.BoolVar(&internal, "internal", false, "no traffic to or from outside the network")
	f.DurationVar(&wait, "wait", 60*time.Second, "how long to wait for every host")
	return cmd
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
			return c.waitNetwork(ctx, args[0], wait, func(n *lnetView) (bool, string) {
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
func (c *cli) waitNetwork(ctx context.Context, name string, wait time.Duration, done func(*lnetView) (bool, string)) error {
	deadline := time.Now().Add(wait)
	for {
		ls, err := c.clusterNetworks(ctx)
		if err != nil {
			return err
		}
		var n *lnetView
		for i := range ls {
			if ls[i].Name == name {
				n = &ls[i]
			}
		}
		ok, msg := done(n)
		if ok {
			fmt.Println(msg)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %s (hosts that are down catch up when they return)", wait, msg)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (c *cli) printClusterNetworks(ls []lnetView) error {
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
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(n.Name), n.Mode, strings.Join(n.Subnets, ","), vni, mtu,
				dash(strings.Join(sortedKeys(n.Hosts), ",")), state)
		}
	})
}

func (c *cli) hostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "hosts of the cluster"}
	cmd.AddCommand(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list hosts: underlay address, liveness, blocks, endpoints",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var hs []hostView
			if err := c.client().Get(ctx, "/v1/cluster/hosts", &hs); err != nil {
				return err
			}
			return c.print(hs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "HOST\tUNDERLAY\tSTATE\tVERSION\tBLOCKS\tENDPOINTS")
				for _, h := range hs {
					state := "DOWN"
					if h.Alive {
						state = "up " + time.Since(h.Started).Round(time.Second).String()
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", h.Name, dash(h.Underlay), state, dash(h.Version),
						dash(strings.Join(h.Blocks, " ")), h.Endpoints)
				}
			})
		},
	})
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
			fmt.Fprintf(os.Stdout, "host %s removed; its blocks and addresses are free again\n", args[0])
			return nil
		},
	})
	return cmd
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
