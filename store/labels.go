package store

import (
	"fmt"
	"strings"
)

// Label limits, Kubernetes'. A service's selector terms are matched
// against containers' Docker labels, which have no limits: the registry
// refuses longer selector terms and the Docker watcher records no longer
// label (it could never be selected, and a few megabytes of label would
// make the record too big for etcd).
const (
	// MaxLabelName bounds a key's name part (after the last '/'),
	// MaxLabelPrefix its prefix, MaxLabelValue a value.
	MaxLabelName   = 63
	MaxLabelPrefix = 253
	MaxLabelValue  = 63
	// MaxSelectorTerms bounds the terms of one selector.
	MaxSelectorTerms = 64
)

// ValidLabel checks a label: Kubernetes' lengths — a key's name part
// (after an optional "prefix/") at most 63 bytes and its prefix at most
// 253, a value at most 63 — and the few characters a KEY=VALUE[,...] term
// cannot carry: '=', ',' and white space in a key, ',' and new lines in a
// value. Docker's own label keys (com.docker.compose.service) fit.
func ValidLabel(k, v string) error {
	prefix, name := "", k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix, name = k[:i], k[i+1:]
	}
	switch {
	case name == "":
		return fmt.Errorf("label key %q: the name part (after any prefix/) is empty", short(k))
	case len(name) > MaxLabelName:
		return fmt.Errorf("label key %q: the name part is %d bytes, at most %d", short(k), len(name), MaxLabelName)
	case len(prefix) > MaxLabelPrefix:
		return fmt.Errorf("label key %q: the prefix (before '/') is %d bytes, at most %d", short(k), len(prefix), MaxLabelPrefix)
	case strings.ContainsAny(k, "=, \t\n\r"):
		return fmt.Errorf("label key %q: no '=', ',' or white space", short(k))
	case len(v) > MaxLabelValue:
		return fmt.Errorf("label %q: the value is %d bytes, at most %d", short(k), len(v), MaxLabelValue)
	case strings.ContainsAny(v, ",\n\r"):
		return fmt.Errorf("label %q: value %q has ',' or a new line", short(k), short(v))
	}
	return nil
}

// SelectableLabels is the labels a selector can match (ValidLabel), nil
// when none is left.
func SelectableLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if ValidLabel(k, v) != nil {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(labels))
		}
		out[k] = v
	}
	return out
}

// short cuts s for an error message (a 3 MB key must not come back whole).
func short(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:60] + "..."
}
