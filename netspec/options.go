package netspec

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Modes (the -o mode=M values).
const (
	ModeBridge  = "bridge"
	ModeVXLAN   = "vxlan"
	ModeMacvlan = "macvlan"
	ModeIpvlan  = "ipvlan"
	ModeNone    = "none"
)

// Option keys podnet understands in -o: Docker's own names where they
// exist, podnet's own under podnet.*.
const (
	OptMode        = "mode"
	OptMTU         = "mtu"
	OptDockerMTU   = "com.docker.network.driver.mtu"
	OptMasquerade  = "podnet.masquerade"
	OptVNI         = "podnet.vni"
	OptDirect      = "podnet.direct-routing"
	OptParent      = "parent"
	OptMacvlanMode = "macvlan_mode"
	OptIpvlanMode  = "ipvlan_mode"
	OptIpvlanFlag  = "ipvlan_flag"
	OptHostAccess  = "podnet.host-access"
)

// Value ranges.
const (
	MinMTU = 68
	MaxMTU = 65535
	MaxVNI = 1<<24 - 1 // VXLAN network identifiers are 24 bits; 0 is not one
)

// modes lists every mode podnet knows, in the order messages name them,
// and whether this build implements it.
var modes = []struct {
	name        string
	implemented bool
}{
	{ModeBridge, true},
	{ModeVXLAN, true},
	{ModeMacvlan, true},
	{ModeIpvlan, true},
	{ModeNone, true},
}

// option is one -o key podnet understands.
type option struct {
	// modes it applies to.
	modes []string
	// shared options must be the same on every host of a network: the
	// cluster-wide definition keeps them (Options.Shared).
	shared bool
	// set checks the value and stores it in o.
	set func(o *Options, key, value string) error
	// def is the value of a shared option the request left out, for the
	// modes it applies to; a new definition records it (SharedDefaults),
	// so a host giving the default explicitly agrees with one that left
	// it out. "" records nothing.
	def string
}

// options is every -o key besides mode. Add a mode's option here: its
// modes, whether hosts must agree on it, and its value checker.
var options = map[string]option{
	OptMTU:        {modes: []string{ModeBridge, ModeVXLAN, ModeMacvlan, ModeIpvlan}, set: setMTU},
	OptDockerMTU:  {modes: []string{ModeBridge, ModeVXLAN, ModeMacvlan, ModeIpvlan}, set: setMTU},
	OptMasquerade: {modes: []string{ModeBridge, ModeVXLAN}, shared: true, set: setBool(func(o *Options) *bool { return &o.Masquerade })},
	OptVNI:        {modes: []string{ModeVXLAN}, set: setVNI},
	OptDirect:     {modes: []string{ModeVXLAN}, shared: true, set: setBool(func(o *Options) *bool { return &o.DirectRouting })},
	// macvlan and ipvlan (lan.go): the parent may be named differently on
	// each host; the modes, the flag and host access must agree.
	OptParent:      {modes: lanModes, set: setParent},
	OptMacvlanMode: {modes: []string{ModeMacvlan}, shared: true, def: MacvlanBridge, set: setChoice(macvlanModes, func(o *Options) *string { return &o.MacvlanMode })},
	OptIpvlanMode:  {modes: []string{ModeIpvlan}, shared: true, def: IpvlanL2, set: setChoice(ipvlanModes, func(o *Options) *string { return &o.IpvlanMode })},
	OptIpvlanFlag:  {modes: []string{ModeIpvlan}, shared: true, def: IpvlanFlagBridge, set: setChoice(ipvlanFlags, func(o *Options) *string { return &o.IpvlanFlag })},
	OptHostAccess:  {modes: lanModes, shared: true, def: "false", set: setBool(func(o *Options) *bool { return &o.HostAccess })},
}

// Options is the typed form of a network's -o options.
type Options struct {
	Mode string
	// MTU is 0 when not given: inherited from the cluster's definition, or
	// the mode's default.
	MTU int
	// VNI is 0 when not given: inherited, or allocated.
	VNI           int
	Masquerade    bool // default true
	DirectRouting bool
	// macvlan and ipvlan: Parent is "" without one (an isolated segment);
	// the modes and the flag hold their defaults when not given, trimmed
	// and in lower case (MacvlanMode for macvlan, IpvlanMode and
	// IpvlanFlag for ipvlan, "" otherwise).
	Parent      string
	MacvlanMode string
	IpvlanMode  string
	IpvlanFlag  string
	HostAccess  bool
	// Raw is the options as given (keys and values verbatim, mode
	// included when given), for the records. Never nil.
	Raw map[string]string
}

// Shared returns the options every host of the network must agree on, as
// given; nil if there are none. Mode, MTU and VNI are not among them: the
// definition has fields for those.
func (o Options) Shared() map[string]string {
	var out map[string]string
	for k, v := range o.Raw {
		if options[k].shared {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// SharedDefaults returns the defaults of mode's shared options that have
// one (Options.Shared gives those that were given): a new cluster-wide
// definition records them; nil if there are none.
func SharedDefaults(mode string) map[string]string {
	var out map[string]string
	for k, opt := range options {
		if opt.shared && opt.def != "" && slices.Contains(opt.modes, mode) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = opt.def
		}
	}
	return out
}

// Implemented lists the modes this build implements.
func Implemented() []string {
	var out []string
	for _, m := range modes {
		if m.implemented {
			out = append(out, m.name)
		}
	}
	return out
}

// ParseOptions validates raw, the -o options of a network ("mode"
// included), each on its own and in combination, and returns their typed
// form. available lists the modes the caller can create (nil: every mode
// this build implements). CheckOptions adds the rules that involve
// --internal.
func ParseOptions(raw map[string]string, available []string) (Options, error) {
	o := Options{Mode: ModeBridge, Masquerade: true, Raw: maps.Clone(raw)}
	if o.Raw == nil {
		o.Raw = map[string]string{}
	}
	if v, ok := raw[OptMode]; ok {
		o.Mode = strings.ToLower(strings.TrimSpace(v))
	}
	if !known(o.Mode) {
		return o, invalidf("unknown mode %q: use one of %s", raw[OptMode], strings.Join(modeNames(), ", "))
	}
	if available == nil {
		available = Implemented()
	}
	if !slices.Contains(available, o.Mode) {
		return o, unavailablef("mode %q is not available in this podnetd (available: %s)", o.Mode, strings.Join(available, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if k == OptMode {
			continue
		}
		opt, ok := options[k]
		if !ok {
			return o, unknownOption(k)
		}
		if !slices.Contains(opt.modes, o.Mode) {
			return o, invalidf("option %q does not apply to mode %s: it is for %s only", k, o.Mode, strings.Join(opt.modes, ", "))
		}
		if err := opt.set(&o, k, raw[k]); err != nil {
			return o, err
		}
	}
	return o, checkLAN(&o)
}

// CheckOptions is ParseOptions plus the rules that combine options with
// --internal (internal): every entry point that has the whole network in
// hand — Validate, the driver checking options inherited from the
// cluster's definition — uses it.
func CheckOptions(raw map[string]string, internal bool, available []string) (Options, error) {
	o, err := ParseOptions(raw, available)
	if err != nil {
		return o, err
	}
	return o, checkInternal(o, internal)
}

// Bool returns the boolean option key of opts (a network's recorded -o
// options), def when absent.
func Bool(opts map[string]string, key string, def bool) (bool, error) {
	v, ok := opts[key]
	if !ok {
		return def, nil
	}
	return parseBool(key, v)
}

// CheckMTU refuses an MTU no link can have.
func CheckMTU(mtu int) error {
	if mtu < MinMTU || mtu > MaxMTU {
		return invalidf("mtu %d is out of range: an MTU must be between %d and %d", mtu, MinMTU, MaxMTU)
	}
	return nil
}

// CheckVNI refuses a number that is not a VXLAN network identifier.
func CheckVNI(vni int) error {
	if vni < 1 || vni > MaxVNI {
		return invalidf("VNI %d is out of range: a VNI is a number from 1 to %d", vni, MaxVNI)
	}
	return nil
}

func setMTU(o *Options, key, v string) error {
	mtu, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return invalidf("option %s=%q is not a number", key, v)
	}
	if CheckMTU(mtu) != nil {
		return invalidf("mtu %d is out of range (option %s=%s): an MTU must be between %d and %d", mtu, key, v, MinMTU, MaxMTU)
	}
	if o.MTU != 0 && o.MTU != mtu {
		return invalidf("options %s=%s and %s=%s disagree; give one", OptMTU, o.Raw[OptMTU], OptDockerMTU, o.Raw[OptDockerMTU])
	}
	o.MTU = mtu
	return nil
}

func setVNI(o *Options, key, v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || CheckVNI(n) != nil {
		return invalidf("option %s=%q: a VNI is a number from 1 to %d", key, v, MaxVNI)
	}
	o.VNI = n
	return nil
}

func setBool(field func(*Options) *bool) func(o *Options, key, v string) error {
	return func(o *Options, key, v string) error {
		b, err := parseBool(key, v)
		if err != nil {
			return err
		}
		*field(o) = b
		return nil
	}
}

func parseBool(key, v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, invalidf("option %s=%q: want true or false", key, v)
	}
	return b, nil
}

func known(mode string) bool {
	return slices.Contains(modeNames(), mode)
}

func modeNames() []string {
	out := make([]string, len(modes))
	for i, m := range modes {
		out[i] = m.name
	}
	return out
}

// unknownOption names the key, the closest known one if it looks like a
// typo of it, and every key podnet understands.
func unknownOption(k string) error {
	keys := append(slices.Sorted(maps.Keys(options)), OptMode)
	slices.Sort(keys)
	hint := ""
	best, bestDist := "", 3 // at most two edits away counts as a typo
	for _, cand := range keys {
		if d := editDistance(strings.ToLower(k), cand); d < bestDist {
			best, bestDist = cand, d
		}
	}
	if best != "" {
		hint = fmt.Sprintf("did you mean %q? ", best)
	}
	return invalidf("unknown option %q (%spodnet understands: %s)", k, hint, strings.Join(keys, ", "))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
