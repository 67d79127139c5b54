package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/internal/dockerid"
	"github.com/spf13/cobra"
)

// Output formats of the commands that print (-o/--output). network create
// takes -o as Docker does, for driver options (see package netspec's doc).
const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
	formatYAML  outputFormat = "yaml"
)

// outputFormat is the -o/--output flag: it refuses anything but table,
// json and yaml when parsed, so a mistaken -o fails on every command, whether or not
// the command gets as far as printing.
type outputFormat string

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "table|json|yaml" }

func (f *outputFormat) Set(v string) error {
	switch outputFormat(v) {
	case formatTable, formatJSON, formatYAML:
		*f = outputFormat(v)
		return nil
	}
	if strings.Contains(v, "=") {
		return fmt.Errorf("%q is not an output format (table, json or yaml): driver options KEY=VALUE are given to podnetctl network create -o/--opt", v)
	}
	return fmt.Errorf("unknown output format %q: want table, json or yaml", v)
}

// printing gives a command that prints the -o/--output flag.
func (c *cli) printing(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().VarP(&c.output, "output", "o", "output format: table, json or yaml")
	return cmd
}

// listLimit is how many items a table cell lists before it summarizes.
const listLimit = 10

// bounded renders the first listLimit items of list and how many more
// there are (-o json lists them all).
func bounded[T any](list []T, show func(T) string) string {
	if len(list) == 0 {
		return "-"
	}
	parts := make([]string, 0, min(len(list), listLimit)+1)
	for _, v := range list[:min(len(list), listLimit)] {
		parts = append(parts, show(v))
	}
	if more := len(list) - listLimit; more > 0 {
		parts = append(parts, fmt.Sprintf("… and %d more (-o json lists all)", more))
	}
	return strings.Join(parts, ", ")
}

func str[T fmt.Stringer](v T) string { return v.String() }

// gcTable prints what a garbage collection removed: a count per kind and
// the first few of each, so a large collection stays readable.
func gcTable(w *tabwriter.Writer, r admin.GCReport) {
	fmt.Fprintf(w, "endpoints removed:\t%d\t%s\n", len(r.Endpoints), bounded(r.Endpoints, dockerid.Short))
	fmt.Fprintf(w, "networks removed:\t%d\t%s\n", len(r.Networks), bounded(r.Networks, dockerid.Short))
	fmt.Fprintf(w, "links removed:\t%d\t%s\n", len(r.Links), bounded(r.Links, func(s string) string { return s }))
	fmt.Fprintf(w, "addresses released:\t%d\t%s\n", len(r.Addresses), bounded(r.Addresses, str))
	fmt.Fprintf(w, "pools released:\t%d\t%s\n", len(r.Pools), bounded(r.Pools, str))
}

// valid is a netip value: zero ones print as "-".
type valid interface {
	IsValid() bool
	String() string
}

func dashIP[T valid](v T) string {
	if !v.IsValid() {
		return "-"
	}
	return v.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
