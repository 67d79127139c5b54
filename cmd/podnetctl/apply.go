package main

import (
	"fmt"
	"io"
	"os"

	"github.com/podnet/podnet/admin"
	"github.com/spf13/cobra"
)

func (c *cli) applyCmd() *cobra.Command {
	return c.fileCmd("apply", "create or update the objects of a YAML or JSON file: services (Kubernetes Service fields, flattened), kind: NetworkPolicy, kind: LoadBalancerPool, kind: BGPPeer (- reads stdin)",
		"/v1/services/apply")
}

func (c *cli) deleteCmd() *cobra.Command {
	return c.fileCmd("delete", "remove the objects a YAML or JSON file names (absent ones are reported, not an error)",
		"/v1/services/delete")
}

// fileCmd is apply or delete: a file of objects sent to path.
func (c *cli) fileCmd(verb, short, path string) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   verb + " -f FILE",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return c.sendFile(path, file)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the file of objects (- for standard input)")
	_ = cmd.MarkFlagRequired("filename")
	return c.printing(cmd)
}

// sendFile posts a file of objects to podnetd, which parses it (errors
// carry the file's line numbers) and applies or deletes each object.
func (c *cli) sendFile(path, file string) error {
	var content []byte
	var err error
	if file == "-" {
		content, err = io.ReadAll(os.Stdin)
	} else {
		content, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	var rs []admin.ApplyResult
	if err := c.client().Post(ctx, path, admin.ServiceFile{Source: file, Content: content}, &rs); err != nil {
		return err
	}
	return c.printResults(rs)
}
