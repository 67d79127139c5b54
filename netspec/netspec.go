package netspec

// Spec is a network as a user asks for it, from any entry point.
type Spec struct {
	// Options are the driver options (-o KEY=VALUE), "mode" included.
	Options map[string]string
	// Subnets in the order given.
	Subnets []Subnet
	// Internal is docker network create --internal.
	Internal bool
}

// Network is a validated Spec.
type Network struct {
	Options
	// Subnets in the order given, pools masked; an ip-range equal to its
	// subnet is dropped (it restricts nothing).
	Subnets  []Subnet
	Internal bool
}

// Validate checks everything about a network spec that can be checked
// without etcd or the kernel: mode, every option and its value, the
// subnets. available lists the modes the caller can create (nil: every
// mode this build implements). Errors wrap fault.ErrInvalid or
// ErrModeUnavailable.
func Validate(s Spec, available []string) (Network, error) {
	o, err := CheckOptions(s.Options, s.Internal, available)
	if err != nil {
		return Network{}, err
	}
	subs, err := checkSubnets(s.Subnets)
	if err != nil {
		return Network{}, err
	}
	if len(subs) == 0 && o.Mode != ModeNone {
		return Network{}, invalidf("network has no subnet: podnet networks need one (docker network create: --ipam-driver podnet; podnetctl network create: --subnet)")
	}
	return Network{Options: o, Subnets: subs, Internal: s.Internal}, nil
}
