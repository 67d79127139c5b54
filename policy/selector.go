package policy

import (
	"maps"
	"slices"
	"strings"

	"github.com/podnet/podnet/store"
)

// Matches reports whether labels satisfy sel: every matchLabels term and
// every requirement. An empty selector matches every label set (the
// selector {} selects every container), as in Kubernetes.
func Matches(sel store.LabelSelector, labels map[string]string) bool {
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		v, has := labels[r.Key]
		switch r.Operator {
		case store.OpIn:
			if !has || !slices.Contains(r.Values, v) {
				return false
			}
		case store.OpNotIn:
			if has && slices.Contains(r.Values, v) {
				return false
			}
		case store.OpExists:
			if !has {
				return false
			}
		case store.OpDoesNotExist:
			if has {
				return false
			}
		default:
			return false // never valid: refused by the validator
		}
	}
	return true
}

// Key is the canonical text of sel, Kubernetes' selector syntax
// ("app=web,tier in (a,b),!legacy"; "" for the empty selector): equal
// selectors have equal keys, so it identifies the address set of a
// selector (shared by every policy that uses it).
func Key(sel store.LabelSelector) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
		parts = append(parts, k+"="+sel.MatchLabels[k])
	}
	var exprs []string
	for _, r := range sel.MatchExpressions {
		vals := slices.Clone(r.Values)
		slices.Sort(vals)
		vals = slices.Compact(vals)
		switch r.Operator {
		case store.OpIn:
			exprs = append(exprs, r.Key+" in ("+strings.Join(vals, ",")+")")
		case store.OpNotIn:
			exprs = append(exprs, r.Key+" notin ("+strings.Join(vals, ",")+")")
		case store.OpExists:
			exprs = append(exprs, r.Key)
		case store.OpDoesNotExist:
			exprs = append(exprs, "!"+r.Key)
		}
	}
	slices.Sort(exprs)
	return strings.Join(slices.Compact(append(parts, exprs...)), ",")
}

// Describe is Key for people: the empty selector reads "{} (every
// container)".
func Describe(sel store.LabelSelector) string {
	if k := Key(sel); k != "" {
		return k
	}
	return "{} (every container)"
}

// Anchor is one requirement every container sel matches must meet, for
// label indexes: Terms (label "k=v" terms, any of which the container
// carries) or Key (a label key it carries). Universal is set when sel has
// no such requirement (the empty selector, or only NotIn/DoesNotExist):
// every container may match it. A selector is registered in an index under
// its anchor only: a container whose labels lack the anchor, before and
// after a change, cannot have entered or left its selection.
type Anchor struct {
	Terms     []string
	Key       string
	Universal bool
}

// AnchorOf picks sel's most selective anchor: a matchLabels term, else
// the In requirement with the fewest values, else an Exists key.
func AnchorOf(sel store.LabelSelector) Anchor {
	if len(sel.MatchLabels) > 0 {
		k := slices.Min(slices.Collect(maps.Keys(sel.MatchLabels)))
		return Anchor{Terms: []string{Term(k, sel.MatchLabels[k])}}
	}
	var best *store.LabelRequirement
	for i, r := range sel.MatchExpressions {
		if r.Operator == store.OpIn && (best == nil || len(r.Values) < len(best.Values)) {
			best = &sel.MatchExpressions[i]
		}
	}
	if best != nil {
		var terms []string
		for _, v := range best.Values {
			terms = append(terms, Term(best.Key, v))
		}
		return Anchor{Terms: terms}
	}
	for _, r := range sel.MatchExpressions {
		if r.Operator == store.OpExists {
			return Anchor{Key: r.Key}
		}
	}
	return Anchor{Universal: true}
}

// Term is the index form of one label: "k=v".
func Term(k, v string) string { return k + "=" + v }

// References reports whether sel looks at label key k at all.
func References(sel store.LabelSelector, k string) bool {
	if _, ok := sel.MatchLabels[k]; ok {
		return true
	}
	return slices.ContainsFunc(sel.MatchExpressions, func(r store.LabelRequirement) bool { return r.Key == k })
}

// Selectors are the label selectors p uses: its podSelector, then its
// peers' podSelectors.
func Selectors(p store.NetworkPolicy) []store.LabelSelector {
	out := []store.LabelSelector{p.PodSelector}
	for _, rs := range [][]store.PolicyRule{p.Ingress, p.Egress} {
		for _, r := range rs {
			for _, peer := range r.Peers {
				if peer.PodSelector != nil {
					out = append(out, *peer.PodSelector)
				}
			}
		}
	}
	return out
}
