package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/spf13/cobra"
)

// The views of LoadBalancer pools, BGP peers and the hosts' announcers.
// They are created and changed with apply -f (kind: LoadBalancerPool,
// kind: BGPPeer); `get -o yaml` prints a file that applies back.

func (c *cli) lbPoolCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "lbpool", Aliases: []string{"lbpools", "loadbalancerpool"},
		Short: "load-balancer pools: addresses type LoadBalancer services get, announced by ARP/NDP (L2) or BGP"}
	cmd.AddCommand(c.printing(c.objLsCmd("/v1/lbpools", "list pools: mode, CIDRs, addresses used",
		func() any { return &[]admin.LBPoolView{} }, func(w *tabwriter.Writer, v any) {
			fmt.Fprintln(w, "NAME\tMODE\tCIDRS\tUSED")
			for _, p := range *v.(*[]admin.LBPoolView) {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Mode, strings.Join(p.CIDRs, ","), usedText(p.Status))
			}
		})),
		c.printing(c.objGetCmd("/v1/lbpools/", "show a pool and the services holding its addresses",
			func() any { return &admin.LBPoolView{} }, func(w *tabwriter.Writer, v any) {
				p := v.(*admin.LBPoolView)
				fmt.Fprintf(w, "name:\t%s\nmode:\t%s\ncidrs:\t%s\nused:\t%s\n", p.Name, p.Mode, strings.Join(p.CIDRs, ", "), usedText(p.Status))
				if p.Status != nil {
					for _, u := range p.Status.Used {
						fmt.Fprintf(w, "  %s\t%s\n", u.IP, u.Service)
					}
				}
			})),
		c.printing(c.rmCmd("remove pools (refused while a service holds one of their addresses)", "/v1/lbpools/")))
	return cmd
}

func usedText(st *admin.LBPoolStatus) string {
	if st == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", len(st.Used), st.Size)
}

func (c *cli) bgpPeerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bgppeer", Aliases: []string{"bgppeers"},
		Short: "BGP peers: the routers hosts announce BGP pools' addresses to"}
	cmd.AddCommand(c.printing(c.objLsCmd("/v1/bgppeers", "list peers and their sessions",
		func() any { return &[]admin.BGPPeerView{} }, func(w *tabwriter.Writer, v any) {
			fmt.Fprintln(w, "NAME\tADDRESS\tPEER-ASN\tMY-ASN\tHOSTS\tHOLD\tPASSWORD\tESTABLISHED")
			for _, p := range *v.(*[]admin.BGPPeerView) {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Name, p.PeerAddress, p.PeerASN, p.MyASN,
					dashList(p.Hosts, "all"), p.HoldTime, map[bool]string{true: "set", false: "-"}[p.Password != ""], establishedText(p.Status))
			}
		})),
		c.printing(c.objGetCmd("/v1/bgppeers/", "show a peer and each host's session with it",
			func() any { return &admin.BGPPeerView{} }, func(w *tabwriter.Writer, v any) {
				p := v.(*admin.BGPPeerView)
				fmt.Fprintf(w, "name:\t%s\npeerAddress:\t%s\npeerASN:\t%d\nmyASN:\t%d\nhosts:\t%s\nholdTime:\t%s\npassword:\t%s\n",
					p.Name, p.PeerAddress, p.PeerASN, p.MyASN, dashList(p.Hosts, "all"), p.HoldTime,
					map[bool]string{true: "set (-o yaml shows it)", false: "-"}[p.Password != ""])
				if p.Status != nil {
					sessionTable(w, p.Status.Sessions)
				}
			})),
		c.printing(c.rmCmd("remove peers (hosts close their sessions)", "/v1/bgppeers/")))
	return cmd
}

func establishedText(st *admin.BGPPeerStatus) string {
	if st == nil {
		return "-"
	}
	n := 0
	for _, s := range st.Sessions {
		if s.State == "Established" {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(st.Sessions))
}

func sessionTable(w *tabwriter.Writer, ss []admin.BGPSessionView) {
	_ = w.Flush()
	fmt.Fprintln(w, "  HOST\tPEER\tADDRESS\tSTATE\tSINCE\tROUTES")
	for _, s := range ss {
		since := "-"
		if !s.Since.IsZero() {
			since = time.Since(s.Since).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%d\n", s.Host, s.Peer, s.Address, s.State, since, s.Routes)
	}
}

// bgpCmd shows every host's announcer: its sessions, the addresses it
// announces over BGP and those it answers ARP/NDP for.
func (c *cli) bgpCmd() *cobra.Command {
	return c.printing(&cobra.Command{
		Use:   "bgp",
		Short: "show every host's LoadBalancer announcer: BGP sessions and routes, L2 addresses answered for",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var hs []admin.BGPHostView
			if err := c.client().Get(ctx, "/v1/bgp", &hs); err != nil {
				return err
			}
			return c.print(hs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "HOST\tBGP ANNOUNCED\tL2 (ARP/NDP)\tINTERFACE")
				var all []admin.BGPSessionView
				for _, h := range hs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.Host, dashList(h.Announced, "-"), dashList(h.L2, "-"), dash(h.Interface))
					all = append(all, h.Sessions...)
				}
				if len(all) > 0 {
					sessionTable(w, all)
				}
			})
		},
	})
}

func dashList(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return bounded(l, func(s string) string { return s })
}

// objLsCmd is `ls` of an object kind: GET path into a fresh value.
func (c *cli) objLsCmd(path, short string, fresh func() any, table func(*tabwriter.Writer, any)) *cobra.Command {
	return &cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: short, Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			v := fresh()
			if err := c.client().Get(ctx, path, v); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { table(w, v) })
		},
	}
}

// objGetCmd is `get NAME` of an object kind.
func (c *cli) objGetCmd(path, short string, fresh func() any, table func(*tabwriter.Writer, any)) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			v := fresh()
			if err := c.client().Get(ctx, path+url.PathEscape(args[0]), v); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { table(w, v) })
		},
	}
}
