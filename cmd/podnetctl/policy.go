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

func (c *cli) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Aliases: []string{"policies", "netpol"},
		Short: "network policies: which containers may talk to which, by Docker label (create them with apply -f)"}
	cmd.AddCommand(c.printing(c.policyLsCmd()), c.printing(c.policyGetCmd()), c.printing(c.policyRmCmd()),
		c.printing(c.policyCheckCmd()), c.printing(c.policyAgentCmd()))
	return cmd
}

func (c *cli) policyLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list network policies: what they select and isolate, how many containers they select",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var vs []admin.PolicyView
			if err := c.client().Get(ctx, "/v1/policies", &vs); err != nil {
				return err
			}
			return c.print(vs, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NAME\tPOD-SELECTOR\tTYPES\tINGRESS\tEGRESS\tSELECTED")
				for _, v := range vs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", v.Name, labelSelectorText(v.PodSelector),
						strings.Join(v.PolicyTypes, ","), len(v.Ingress), len(v.Egress), selectedText(v.Status))
				}
			})
		},
	}
}

func (c *cli) policyGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "show a network policy, its rules and the containers it selects (and whether policies are enforced on them); -o yaml applies back",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var v admin.PolicyView
			if err := c.client().Get(ctx, "/v1/policies/"+url.PathEscape(args[0]), &v); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) { policyTable(w, v) })
		},
	}
}

func policyTable(w *tabwriter.Writer, v admin.PolicyView) {
	fmt.Fprintf(w, "name:\t%s\n", v.Name)
	fmt.Fprintf(w, "podSelector:\t%s\n", labelSelectorText(v.PodSelector))
	fmt.Fprintf(w, "policyTypes:\t%s\n", strings.Join(v.PolicyTypes, ", "))
	for i, r := range v.Ingress {
		fmt.Fprintf(w, "ingress rule %d:\tfrom %s, %s\n", i+1, peersText(r.From, "everywhere"), policyPortsText(r.Ports))
	}
	for i, r := range v.Egress {
		fmt.Fprintf(w, "egress rule %d:\tto %s, %s\n", i+1, peersText(r.To, "everywhere"), policyPortsText(r.Ports))
	}
	if v.Status == nil {
		return
	}
	fmt.Fprintf(w, "selected:\t%s\n", selectedText(v.Status))
	_ = w.Flush()
	if len(v.Status.Selected) > 0 {
		fmt.Fprintln(w, "  HOST\tCONTAINER\tADDRESSES\tENFORCED")
		for _, s := range v.Status.Selected {
			enf := "yes"
			if !s.Enforced {
				enf = "no: " + s.Reason
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", s.Host, s.Container, dash(strings.Join(s.Addresses, ",")), enf)
		}
	}
}

func selectedText(st *admin.PolicyStatus) string {
	if st == nil {
		return "-"
	}
	n := 0
	for _, s := range st.Selected {
		if !s.Enforced {
			n++
		}
	}
	if n > 0 {
		return fmt.Sprintf("%d (%d not enforced)", len(st.Selected), n)
	}
	return fmt.Sprint(len(st.Selected))
}

// labelSelectorText is Kubernetes' selector syntax, {} for everything.
func labelSelectorText(s *admin.LabelSelector) string {
	if s == nil {
		return "-"
	}
	var parts []string
	if len(s.MatchLabels) > 0 {
		parts = append(parts, selectorText(s.MatchLabels))
	}
	for _, r := range s.MatchExpressions {
		switch r.Operator {
		case "In", "NotIn":
			parts = append(parts, fmt.Sprintf("%s %s (%s)", r.Key, strings.ToLower(r.Operator), strings.Join(r.Values, ",")))
		case "Exists":
			parts = append(parts, r.Key)
		default:
			parts = append(parts, "!"+r.Key)
		}
	}
	if len(parts) == 0 {
		return "{} (every container)"
	}
	return strings.Join(parts, ",")
}

func peersText(ps []admin.PolicyPeerSpec, none string) string {
	if len(ps) == 0 {
		return none
	}
	var out []string
	for _, p := range ps {
		switch {
		case p.PodSelector != nil:
			out = append(out, "podSelector "+labelSelectorText(p.PodSelector))
		case p.IPBlock != nil:
			s := "ipBlock " + p.IPBlock.CIDR
			if len(p.IPBlock.Except) > 0 {
				s += " except " + strings.Join(p.IPBlock.Except, ", ")
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, " or ")
}

func policyPortsText(ps []admin.PolicyPortSpec) string {
	if len(ps) == 0 {
		return "every port"
	}
	var out []string
	for _, p := range ps {
		switch {
		case p.Port == nil:
			out = append(out, "every "+p.Protocol+" port")
		case p.EndPort != nil:
			out = append(out, fmt.Sprintf("%s-%d/%s", p.Port, *p.EndPort, p.Protocol))
		default:
			out = append(out, p.Port.String()+"/"+p.Protocol)
		}
	}
	return "ports " + strings.Join(out, ", ")
}

func (c *cli) policyRmCmd() *cobra.Command {
	return c.rmCmd("remove network policies; an absent one is not an error", "/v1/policies/")
}

func (c *cli) policyCheckCmd() *cobra.Command {
	var q admin.PolicyCheck
	cmd := &cobra.Command{
		Use:   "check --from CONTAINER|IP --to CONTAINER|IP --port PORT[/tcp|udp|sctp]",
		Short: "would a new connection be allowed? Prints allowed or denied, then the policies and rules that decide (the data plane's own model)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var v admin.PolicyVerdict
			if err := c.client().Post(ctx, "/v1/policies/check", q, &v); err != nil {
				return err
			}
			return c.print(v, func(w *tabwriter.Writer) {
				if v.Allowed {
					fmt.Fprintln(w, "allowed")
				} else {
					fmt.Fprintln(w, "denied")
				}
				fmt.Fprintf(w, "from:\t%s\n", v.From)
				fmt.Fprintf(w, "to:\t%s\n", v.To)
				for _, s := range []struct {
					name string
					side admin.PolicySide
				}{{"egress (source)", v.Egress}, {"ingress (destination)", v.Ingress}} {
					word := "denied"
					if s.side.Allowed {
						word = "allowed"
					}
					fmt.Fprintf(w, "%s:\t%s: %s\n", s.name, word, s.side.Reason)
				}
			})
		},
	}
	cmd.Flags().StringVar(&q.From, "from", "", "source: a container name or ID (any host), or an IP address")
	cmd.Flags().StringVar(&q.To, "to", "", "destination: a container name or ID (any host), or an IP address")
	cmd.Flags().StringVar(&q.Port, "port", "", "destination port, PORT[/tcp|udp|sctp] (tcp by default)")
	for _, f := range []string{"from", "to", "port"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func (c *cli) policyAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "show this host's network policy agent: policies held, endpoints isolated, open or pending, last programming",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := c.ctx()
			defer cancel()
			var s admin.PolicyAgentStatus
			if err := c.client().Get(ctx, "/v1/policy-agent", &s); err != nil {
				return err
			}
			return c.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "host:\t%s\n", s.Host)
				fmt.Fprintf(w, "synced:\t%v\n", s.Synced)
				fmt.Fprintf(w, "policies:\t%d\n", s.Policies)
				for _, st := range []string{"isolated", "open", "pending", "unenforced"} {
					fmt.Fprintf(w, "endpoints %s:\t%d\n", st, s.Endpoints[st])
				}
				if len(s.Pending) > 0 {
					fmt.Fprintf(w, "pending:\t%s\n", bounded(s.Pending, func(s string) string { return s }))
				}
				if !s.LastProgram.IsZero() {
					fmt.Fprintf(w, "last programmed:\t%s (took %v)\n", s.LastProgram.Format(time.RFC3339), s.LastProgramDuration.Round(time.Microsecond))
				}
			})
		},
	}
}
