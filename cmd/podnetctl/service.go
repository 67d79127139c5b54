package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/podnet/podnet/admin"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func (c *cli) serviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "service", Aliases: []string{"svc"},
		Short: "services: a VIP and a name in front of the containers a label selector picks, on every host"}
	cmd.AddCommand(c.printing(c.serviceCreateCmd()), c.printing(c.serviceLsCmd()), c.printing(c.serviceGetCmd()),
		c.printing(c.serviceRmCmd()), c.printing(c.serviceAgentCmd()))
	return cmd
}

// serviceFlags are the flags of service create, turned into the same spec
// a file for apply -f holds; podnetd validates both the same way.
type serviceFlags struct {
	selectors, ports, externalIPs []string
	nodePorts                     []int
	typ, vip, affinity, policy    string
	lbIP                          string
	affinityTimeout               time.Duration
	// affinityTimeoutSet: the flag was given (an explicit
	// --affinity-timeout 0s is refused, not taken for the default).
	affinityTimeoutSet bool
}

func (f *serviceFlags) spec(name string) (admin.ServiceSpec, error) {
	s := admin.ServiceSpec{Name: name, Selector: map[string]string{}, Type: f.typ, ClusterIP: f.vip,
		ExternalIPs: f.externalIPs, SessionAffinity: f.affinity, ExternalTrafficPolicy: f.policy, LoadBalancerIP: f.lbIP}
	for _, sel := range f.selectors {
		for _, t := range strings.Split(sel, ",") {
			k, v, ok := strings.Cut(t, "=")
			if !ok {
				return s, fmt.Errorf("--selector term %q has no '=': want KEY=VALUE[,KEY=VALUE...]", t)
			}
			if old, dup := s.Selector[k]; dup && old != v {
				return s, fmt.Errorf("--selector: key %q is given twice (%q and %q)", k, old, v)
			}
			s.Selector[k] = v
		}
	}
	for _, p := range f.ports {
		ps, err := parsePort(p)
		if err != nil {
			return s, err
		}
		s.Ports = append(s.Ports, ps)
	}
	if len(f.nodePorts) > len(s.Ports) {
		return s, fmt.Errorf("%d --node-port for %d --port: the i-th --node-port belongs to the i-th --port", len(f.nodePorts), len(s.Ports))
	}
	for i, n := range f.nodePorts {
		s.Ports[i].NodePort = n
	}
	if f.lbIP != "" && s.Type == "" {
		s.Type = "LoadBalancer"
	}
	if len(f.nodePorts) > 0 {
		// --node-port implies NodePort (a LoadBalancer service has
		// NodePorts too); an explicit ClusterIP says the opposite, and
		// which one was meant is the user's to say.
		if s.Type != "" && !strings.EqualFold(s.Type, "NodePort") && !strings.EqualFold(s.Type, "LoadBalancer") {
			return s, fmt.Errorf("--node-port with --type %s: NodePorts belong to types NodePort and LoadBalancer (leave --type out, or give one of them)", s.Type)
		}
	}
	if len(f.nodePorts) > 0 && s.Type == "" {
		s.Type = "NodePort"
	}
	if f.affinityTimeoutSet || f.affinityTimeout != 0 {
		secs := int(f.affinityTimeout / time.Second)
		if f.affinityTimeout%time.Second != 0 {
			return s, fmt.Errorf("--affinity-timeout %v: want whole seconds, 1s to 24h", f.affinityTimeout)
		}
		// The range (1s..24h) is podnetd's to check, as for files.
		s.SessionAffinityConfig = &admin.SessionAffinityConfig{ClientIP: &admin.ClientIPConfig{TimeoutSeconds: &secs}}
	}
	return s, nil
}

// parsePort reads [NAME:]PORT[:TARGET][/tcp|/udp|/sctp]. Ranges and
// protocols are checked by podnetd.
func parsePort(in string) (admin.ServicePortSpec, error) {
	var p admin.ServicePortSpec
	body, proto, hasProto := strings.Cut(in, "/")
	if hasProto {
		if proto == "" {
			return p, fmt.Errorf("--port %q: nothing after '/': want tcp, udp or sctp", in)
		}
		p.Protocol = proto
	}
	parts := strings.Split(body, ":")
	if _, err := strconv.Atoi(parts[0]); err != nil && len(parts) > 1 {
		p.Name, parts = parts[0], parts[1:]
	}
	if len(parts) > 2 || parts[0] == "" {
		return p, fmt.Errorf("--port %q: want [NAME:]PORT[:TARGET][/tcp|/udp|/sctp]", in)
	}
	var err error
	if p.Port, err = strconv.Atoi(parts[0]); err != nil {
		return p, fmt.Errorf("--port %q: port %q is not a number", in, parts[0])
	}
	if len(parts) == 2 {
		if p.TargetPort, err = strconv.Atoi(parts[1]); err != nil {
			return p, fmt.Errorf("--port %q: target port %q is not a number", in, parts[1])
		}
	}
	return p, nil
}

func (c *cli) serviceCreateCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "create NAME --selector KEY=VALUE[,...] --port [NAME:]PORT[:TARGET][/tcp|/udp|/sctp] [flags]",
		Short: "create a service: a VIP (and DNS name) load-balanced over the containers the selector picks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.affinityTimeoutSet = cmd.Flags().Changed("affinity-timeout")
			spec, err := f.spec(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := c.ctx()
			defer cancel()
			var v admin.ServiceView
			if err := c.client().Post(ctx, "/v1/services", spec, &v); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "service/%s created\tclusterIP %s\tports %s", v.Name, dash(v.ClusterIP), portsText(v.Ports))
				if v.LoadBalancerIP != "" {
					fmt.Fprintf(w, "\tloadBalancerIP %s", v.LoadBalancerIP)
				}
				fmt.Fprintln(w)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.selectors, "selector", nil, "label terms a container must all carry, KEY=VALUE[,KEY=VALUE...] (repeatable)")
	fl.StringArrayVar(&f.ports, "port", nil, "[NAME:]PORT[:TARGET][/tcp|/udp|/sctp] (repeatable; TARGET defaults to PORT)")
	fl.StringVar(&f.typ, "type", "", "ClusterIP (default), NodePort or LoadBalancer (an address from a LoadBalancerPool, announced by ARP/NDP or BGP)")
	fl.IntSliceVar(&f.nodePorts, "node-port", nil, "NodePort of the i-th --port (30000-32767, or 0: allocated; ports past the list: allocated); implies --type NodePort unless --type LoadBalancer")
	fl.StringVar(&f.lbIP, "load-balancer-ip", "", "the address of a LoadBalancerPool the service asks for (default: allocated); implies --type LoadBalancer")
	fl.StringVar(&f.vip, "vip", "", "the VIP, from the service CIDR (default: allocated), or None for a headless service")
	fl.StringArrayVar(&f.externalIPs, "external-ip", nil, "an address of podnetd's --external-ip-cidrs whose traffic to the service's ports is the service's, on every host (repeatable)")
	fl.StringVar(&f.affinity, "session-affinity", "", "None (default) or ClientIP: a client keeps its endpoint")
	fl.DurationVar(&f.affinityTimeout, "affinity-timeout", 0, "how long a ClientIP affinity lasts after the client's last new connection: 1s to 24h (default 3h)")
	fl.StringVar(&f.policy, "external-traffic-policy", "", "Cluster (default) or Local: NodePort and external-IP traffic only to this host's endpoints, client address kept")
	return cmd
}

func (c *cli) serviceLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list services: VIP, ports, endpoints ready/selected",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var vs []admin.ServiceView
			if err := c.client().Get(ctx, "/v1/services", &vs); err != nil {
				return err
			}
			return c.print(vs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NAME\tTYPE\tCLUSTER-IP\tEXTERNAL-IP\tPORT(S)\tENDPOINTS\tSELECTOR")
				for _, v := range vs {
					ext := v.ExternalIPs
					if v.LoadBalancerIP != "" {
						ext = append([]string{v.LoadBalancerIP}, ext...)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Type, dash(v.ClusterIP),
						dash(strings.Join(ext, ",")), portsText(v.Ports), readyText(v.Status), selectorText(v.Selector))
				}
			})
		},
	}
}

func (c *cli) serviceGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "show a service, its endpoints (host, container, address:port, ready) and hosts that cannot program it",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var v admin.ServiceView
			if err := c.client().Get(ctx, "/v1/services/"+url.PathEscape(args[0]), &v); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { serviceTable(w, v) })
		},
	}
}

func serviceTable(w *tabwriter.Writer, v admin.ServiceView) {
	fmt.Fprintf(w, "name:\t%s\n", v.Name)
	fmt.Fprintf(w, "type:\t%s\n", v.Type)
	fmt.Fprintf(w, "clusterIP:\t%s\n", dash(v.ClusterIP))
	if len(v.ExternalIPs) > 0 {
		fmt.Fprintf(w, "externalIPs:\t%s\n", strings.Join(v.ExternalIPs, ", "))
	}
	if v.LoadBalancerIP != "" {
		fmt.Fprintf(w, "loadBalancerIP:\t%s%s\n", v.LoadBalancerIP, lbText(v.Status))
	}
	fmt.Fprintf(w, "ports:\t%s\n", portsText(v.Ports))
	fmt.Fprintf(w, "selector:\t%s\n", selectorText(v.Selector))
	aff := v.SessionAffinity
	if c := v.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		aff += fmt.Sprintf(" (%v)", time.Duration(*c.ClientIP.TimeoutSeconds)*time.Second)
	}
	fmt.Fprintf(w, "sessionAffinity:\t%s\n", aff)
	fmt.Fprintf(w, "externalTrafficPolicy:\t%s\n", v.ExternalTrafficPolicy)
	if v.Status == nil {
		return
	}
	fmt.Fprintf(w, "endpoints:\t%s\n", readyText(v.Status))
	_ = w.Flush() // the endpoint table has columns of its own
	if len(v.Status.Endpoints) > 0 {
		fmt.Fprintln(w, "  HOST\tCONTAINER\tMODE\tADDRESS\tREADY")
		for _, e := range v.Status.Endpoints {
			ready := "yes"
			if !e.Ready {
				ready = "no: " + e.Reason
			} else if e.Reach != "" {
				ready = "yes, " + e.Reach
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", e.Host, e.Container, e.Mode, endpointAddrs(e), ready)
		}
	}
	for _, e := range v.Status.Errors {
		fmt.Fprintf(w, "error on %s:\t%s (since %s)\n", e.Host, e.Error, e.Since.Format(time.RFC3339))
	}
}

// lbText says where a load-balancer address is announced.
func lbText(st *admin.ServiceStatus) string {
	if st == nil || st.LoadBalancer == nil {
		return ""
	}
	lb := st.LoadBalancer
	if lb.Pool == "" {
		return " (in no pool)"
	}
	who := "announced by nobody yet"
	switch {
	case len(lb.Announcers) > 0 && lb.Mode == "L2":
		who = "answered for by " + strings.Join(lb.Announcers, ", ")
	case len(lb.Announcers) > 0:
		who = "announced by " + strings.Join(lb.Announcers, ", ")
	}
	return fmt.Sprintf(" (pool %s, %s: %s)", lb.Pool, lb.Mode, who)
}

func endpointAddrs(e admin.ServiceEndpointView) string {
	if e.Address == "" {
		return "-"
	}
	host := e.Address
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	out := make([]string, 0, len(e.Ports))
	for _, p := range e.Ports {
		out = append(out, host+":"+strconv.Itoa(p))
	}
	return strings.Join(out, " ")
}

func (c *cli) serviceRmCmd() *cobra.Command {
	return c.rmCmd("remove services (their VIP and NodePorts are free again); an absent one is not an error", "/v1/services/")
}

func (c *cli) serviceAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "show this host's service proxy agent: services held, failures, change-to-program lag",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var s admin.ServiceAgentStatus
			if err := c.client().Get(ctx, "/v1/service-agent", &s); err != nil {
				return err
			}
			return c.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "host:\t%s\n", s.Host)
				fmt.Fprintf(w, "data plane:\t%v\n", map[bool]string{true: "programmed", false: "none in this build (computed only)"}[s.Programmer])
				fmt.Fprintf(w, "synced:\t%v\n", s.Synced)
				if !s.LastSync.IsZero() {
					fmt.Fprintf(w, "last full sync:\t%s (took %v)\n", s.LastSync.Format(time.RFC3339), s.LastSyncDuration.Round(time.Microsecond))
				}
				fmt.Fprintf(w, "services:\t%d\n", s.Services)
				fmt.Fprintf(w, "failing:\t%s\n", dash(strings.Join(s.Failing, ", ")))
				fmt.Fprintf(w, "lag (last %d changes):\tp50 %v  p99 %v  max %v\n", s.LagCount, s.LagP50, s.LagP99, s.LagMax)
			})
		},
	}
}

// printResults prints apply/delete/rm results as kubectl does; an object
// that failed makes the command fail after every line is printed.
func (c *cli) printResults(rs []admin.ApplyResult) error {
	failed := 0
	err := c.print(rs, func(w *tabwriter.Writer) {
		for _, r := range rs {
			switch {
			case r.Error != "":
				failed++
				fmt.Fprintf(os.Stderr, "%s/%s: %s\n", kindWord(r.Kind), r.Name, r.Error)
			case r.Action == admin.ActionNotFound:
				fmt.Fprintf(w, "%s/%s not found (nothing to remove)\n", kindWord(r.Kind), r.Name)
			default:
				fmt.Fprintf(w, "%s/%s %s\n", kindWord(r.Kind), r.Name, r.Action)
			}
		}
	})
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d object(s) failed", failed, len(rs))
	}
	return nil
}

// kindWord names a kind as podnetctl's commands do.
func kindWord(kind string) string {
	switch kind {
	case admin.KindNetworkPolicy:
		return "networkpolicy"
	case admin.KindLoadBalancerPool:
		return "lbpool"
	case admin.KindBGPPeer:
		return "bgppeer"
	}
	return "service"
}

// printYAML writes v's JSON form (the API's field names) as YAML, so
// `service get -o yaml` can be applied again.
func (c *cli) printYAML(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return err
	}
	blockStyle(&n)
	enc := yaml.NewEncoder(c.out)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	return enc.Close()
}

// blockStyle turns JSON's flow style into YAML's block style.
func blockStyle(n *yaml.Node) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		n.Style = 0
	} else if n.Style == yaml.DoubleQuotedStyle {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func portsText(ps []admin.ServicePortSpec) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		s := strconv.Itoa(p.Port)
		if p.NodePort != 0 {
			s += ":" + strconv.Itoa(p.NodePort)
		}
		s += "/" + p.Protocol
		if p.TargetPort != 0 && p.TargetPort != p.Port {
			s += "→" + strconv.Itoa(p.TargetPort)
		}
		if p.Name != "" {
			s = p.Name + " " + s
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func selectorText(sel map[string]string) string {
	out := make([]string, 0, len(sel))
	for _, k := range sortedKeys(sel) {
		out = append(out, k+"="+sel[k])
	}
	return strings.Join(out, ",")
}

func readyText(st *admin.ServiceStatus) string {
	if st == nil {
		return "-"
	}
	ready := 0
	for _, e := range st.Endpoints {
		if e.Ready {
			ready++
		}
	}
	s := fmt.Sprintf("%d/%d ready", ready, len(st.Endpoints))
	if len(st.Errors) > 0 {
		s += fmt.Sprintf(", %d host error(s)", len(st.Errors))
	}
	return s
}

// rmCmd is `rm NAME...` for the objects of apply -f under route (a path
// ending in "/"): each name deleted in turn, an absent one not an error,
// the results printed as apply -f prints them.
func (c *cli) rmCmd(short, route string) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove", "delete"},
		Short:   short,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var rs []admin.ApplyResult
			for _, n := range args {
				var r admin.ApplyResult
				if err := c.client().Delete(ctx, route+url.PathEscape(n), &r); err != nil {
					return err
				}
				rs = append(rs, r)
			}
			return c.printResults(rs)
		},
	}
}
