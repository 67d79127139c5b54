package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/podnet/podnet/admin"
	"go.yaml.in/yaml/v3"
)

// FileService is one service read from an apply/delete file, with the line
// its object starts on (for error messages).
type FileService struct {
	Spec admin.ServiceSpec
	Line int
}

// fileObject is what one object of a file may hold: the spec, and the
// read-only status that `podnetctl service get -o yaml` prints (ignored,
// as kubectl ignores it, so that output can be applied again).
type fileObject struct {
	admin.ServiceSpec `yaml:",inline"`
	Status            yaml.Node `yaml:"status,omitempty"`
}

// ParseFile reads a YAML or JSON file of services: each document is one
// service or a list of them. Unknown fields, values of the wrong type, bad
// YAML and a name given twice are refused with the line they are on;
// source names the file in errors.
func ParseFile(source string, content []byte) ([]FileService, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var out []FileService
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, inputf("%s: %v", source, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		objs := []*yaml.Node{root}
		switch root.Kind {
		case yaml.SequenceNode:
			objs = root.Content
		case yaml.MappingNode:
		default:
			if root.Tag == "!!null" {
				continue
			}
			return nil, inputf("%s: line %d: want a service (a mapping) or a list of services", source, root.Line)
		}
		for _, n := range objs {
			fs, err := parseObject(n)
			if err != nil {
				return nil, inputf("%s: %v", source, err)
			}
			out = append(out, fs)
		}
	}
	if len(out) == 0 {
		return nil, inputf("%s: no service in the file", source)
	}
	lines := map[string]int{}
	for _, fs := range out {
		if l, ok := lines[fs.Spec.Name]; ok && fs.Spec.Name != "" {
			return nil, inputf("%s: line %d: service %s is also defined on line %d", source, fs.Line, fs.Spec.Name, l)
		}
		lines[fs.Spec.Name] = fs.Line
	}
	return out, nil
}

func parseObject(n *yaml.Node) (FileService, error) {
	if n.Kind != yaml.MappingNode {
		return FileService{}, fmt.Errorf("line %d: want a service (a mapping with name, selector, ports...)", n.Line)
	}
	if err := checkFields(n, reflect.TypeFor[fileObject](), ""); err != nil {
		return FileService{}, err
	}
	var obj fileObject
	if err := n.Decode(&obj); err != nil {
		return FileService{}, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return FileService{Spec: obj.ServiceSpec, Line: n.Line}, nil
}

// checkFields refuses mapping keys that t (a struct, through its yaml
// tags) does not have, recursively; path names where the key is.
func checkFields(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[yaml.Node]():
		return nil
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := checkFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				names := make([]string, 0, len(fields))
				for f := range fields {
					names = append(names, f)
				}
				slices.Sort(names)
				return fmt.Errorf("line %d: unknown field %q%s (known: %s)", k.Line, k.Value, at(path), strings.Join(names, ", "))
			}
			if err := checkFields(n.Content[i+1], ft, join(path, k.Value)); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps the yaml names of t's fields (inlined ones included) to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
