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
	content, err := readServiceFile(file)
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	var rs []admin.ApplyResult
	if err := c.client().Post(ctx, path, admin.ServiceFile{Source: file, Content: content}, &rs); err != nil {
		return err
	}
	return c.printResults(rs)
}

// readServiceFile reads a file of services (- for standard input), at
// most admin.MaxServiceFile bytes: a larger one is refused after reading
// one byte past the limit, whatever it is (a pipe, /dev/zero), so a huge
// file costs no memory.
func readServiceFile(file string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > admin.MaxServiceFile {
			return nil, admin.FileTooLarge(file)
		}
		r = f
	}
	content, err := io.ReadAll(io.LimitReader(r, admin.MaxServiceFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(content) > admin.MaxServiceFile {
		return nil, admin.FileTooLarge(file)
	}
	return content, nil
}
