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

// FileObject is one object read from an apply/delete file: a service
// (also when it has no kind), a network policy, a load-balancer pool or a
// BGP peer, with the line it starts on (for error messages).
type FileObject struct {
	Kind    string // admin.KindService, KindNetworkPolicy, KindLoadBalancerPool or KindBGPPeer
	Line    int
	Service admin.ServiceSpec
	Policy  admin.PolicySpec
	Pool    admin.LBPoolSpec
	Peer    admin.BGPPeerSpec
}

// Name is the object's name.
func (o FileObject) Name() string {
	switch o.Kind {
	case admin.KindNetworkPolicy:
		return o.Policy.Name
	case admin.KindLoadBalancerPool:
		return o.Pool.Name
	case admin.KindBGPPeer:
		return o.Peer.Name
	}
	return o.Service.Name
}

// What names the object for messages: "service web", "BGP peer tor1".
func (o FileObject) What() string { return kindText(o.Kind) + " " + o.Name() }

// kindText is a kind in words.
func kindText(kind string) string {
	switch kind {
	case admin.KindNetworkPolicy:
		return "network policy"
	case admin.KindLoadBalancerPool:
		return "load-balancer pool"
	case admin.KindBGPPeer:
		return "BGP peer"
	}
	return "service"
}

// The objects of a file: each spec, its kind, and the read-only status
// that `podnetctl ... get -o yaml` prints (ignored, as kubectl ignores
// it, so that output can be applied again).
type serviceObject struct {
	Kind              string `yaml:"kind,omitempty"`
	admin.ServiceSpec `yaml:",inline"`
	Status            yaml.Node `yaml:"status,omitempty"`
}

type policyObject struct {
	admin.PolicySpec `yaml:",inline"`
	Status           yaml.Node `yaml:"status,omitempty"`
}

type poolObject struct {
	admin.LBPoolSpec `yaml:",inline"`
	Status           yaml.Node `yaml:"status,omitempty"`
}

type peerObject struct {
	admin.BGPPeerSpec `yaml:",inline"`
	Status            yaml.Node `yaml:"status,omitempty"`
}

// ParseFile reads a YAML or JSON file of objects: each document is one
// object or a list of them. Unknown kinds, unknown fields, values of the
// wrong type, bad YAML and a name given twice for one kind are refused
// with the line they are on; source names the file in errors.
func ParseFile(source string, content []byte) ([]FileObject, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var out []FileObject
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
			return nil, inputf("%s: line %d: want an object (a service, a network policy, a load-balancer pool or a BGP peer) or a list of them", source, root.Line)
		}
		for _, n := range objs {
			o, err := parseObject(n)
			if err != nil {
				return nil, inputf("%s: %v", source, err)
			}
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return nil, inputf("%s: no object in the file", source)
	}
	lines := map[string]int{}
	for _, o := range out {
		key := o.Kind + "/" + o.Name()
		if l, ok := lines[key]; ok && o.Name() != "" {
			return nil, inputf("%s: line %d: %s is also defined on line %d", source, o.Line, o.What(), l)
		}
		lines[key] = o.Line
	}
	return out, nil
}

func parseObject(n *yaml.Node) (FileObject, error) {
	if n.Kind != yaml.MappingNode {
		return FileObject{}, fmt.Errorf("line %d: want an object (a mapping with kind, name...)", n.Line)
	}
	kind := admin.KindService
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			switch v := n.Content[i+1]; v.Value {
			case admin.KindService, admin.KindNetworkPolicy, admin.KindLoadBalancerPool, admin.KindBGPPeer:
				kind = v.Value
			default:
				return FileObject{}, fmt.Errorf("line %d: unknown kind %q: podnet takes %s, %s, %s and %s objects", v.Line, v.Value,
					admin.KindService, admin.KindNetworkPolicy, admin.KindLoadBalancerPool, admin.KindBGPPeer)
			}
		}
	}
	o := FileObject{Kind: kind, Line: n.Line}
	var err error
	switch kind {
	case admin.KindNetworkPolicy:
		var obj policyObject
		err = decodeObject(n, &obj)
		o.Policy = obj.PolicySpec
		o.Policy.Kind = kind
	case admin.KindLoadBalancerPool:
		var obj poolObject
		err = decodeObject(n, &obj)
		o.Pool = obj.LBPoolSpec
		o.Pool.Kind = kind
	case admin.KindBGPPeer:
		var obj peerObject
		err = decodeObject(n, &obj)
		o.Peer = obj.BGPPeerSpec
		o.Peer.Kind = kind
	default:
		var obj serviceObject
		err = decodeObject(n, &obj)
		o.Service = obj.ServiceSpec
	}
	return o, err
}

// decodeObject checks n's fields against obj's type, then decodes it.
func decodeObject[T any](n *yaml.Node, obj *T) error {
	if err := checkFields(n, reflect.TypeFor[T](), ""); err != nil {
		return err
	}
	if err := n.Decode(obj); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return nil
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
				return fmt.Errorf("line %d: unknown field %q%s (known: %s)%s", k.Line, k.Value, at(path), strings.Join(names, ", "), fieldHint(k.Value))
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

// fieldHint explains the unknown fields a Kubernetes manifest brings.
func fieldHint(field string) string {
	switch field {
	case "namespaceSelector":
		return ": Docker has no namespaces; select a Compose project with podSelector {matchLabels: {com.docker.compose.project: NAME}}"
	case "metadata", "spec":
		return ": write name and the spec's fields at the top level of the object"
	}
	return ""
}
