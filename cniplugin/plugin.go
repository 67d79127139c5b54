package cniplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/podnet/podnet/admin"
	"github.com/podnet/podnet/cniconf"
	"github.com/vishvananda/netlink"
)

// Podnetd is podnetd's admin API as the plugin calls it.
type Podnetd interface {
	Post(ctx context.Context, path string, in, out any) error
}

// Plugin runs the CNI commands.
type Plugin struct {
	// Dial returns the client of podnetd's admin socket (default:
	// admin.NewClient).
	Dial func(socket string) Podnetd
	// Host is a netlink handle in the plugin's (the host's) namespace.
	Host *netlink.Handle
	// Stdout receives results (default os.Stdout), Stderr warnings
	// (default os.Stderr).
	Stdout, Stderr io.Writer
	// Timeout bounds each call to podnetd (default 2 min: an ADD waits
	// for a starting podnetd up to 30 s, and for etcd).
	Timeout time.Duration
}

// Funcs are the plugin's commands for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}

// VersionInfo lists the CNI versions the plugin speaks.
func VersionInfo() version.PluginInfo { return version.PluginSupports(cniconf.Versions...) }

func (p *Plugin) podnetd(c *cniconf.NetConf) Podnetd {
	socket := c.Socket
	if socket == "" {
		socket = admin.DefaultSocket
	}
	if p.Dial != nil {
		return p.Dial(socket)
	}
	return admin.NewClient(socket)
}

func (p *Plugin) ctx() (context.Context, context.CancelFunc) {
	t := p.Timeout
	if t == 0 {
		t = 2 * time.Minute
	}
	return context.WithTimeout(context.Background(), t)
}

// load parses the configuration and CNI_ARGS into podnetd's request.
func load(args *skel.CmdArgs) (*cniconf.NetConf, admin.CNIRequest, error) {
	conf, err := cniconf.Parse(args.StdinData)
	if err != nil {
		return nil, admin.CNIRequest{}, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	req := admin.CNIRequest{Network: conf.Name, Subnet: conf.Subnet, ContainerID: args.ContainerID,
		IfName: args.IfName, NetNS: args.Netns}
	return conf, req, nil
}

// attachRequest adds what only ADD uses: names, requested addresses,
// MAC and ports.
func attachRequest(conf *cniconf.NetConf, args *skel.CmdArgs, req *admin.CNIRequest) error {
	a, err := cniconf.ParseArgs(args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	req.Name = string(a.K8S_POD_NAME)
	if req.Aliases, err = conf.AliasesFor(); err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	if req.IPs, err = conf.RequestedIPs(a); err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	req.MAC = conf.RequestedMAC(a)
	if req.MAC != "" {
		if _, err := net.ParseMAC(req.MAC); err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("requested MAC %q: %v", req.MAC, err), "")
		}
	}
	for _, pm := range conf.RuntimeConfig.PortMappings {
		if pm.HostPort < 0 || pm.HostPort > 65535 || pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("port mapping %d:%d: ports are 1-65535", pm.HostPort, pm.ContainerPort), "")
		}
		port := admin.CNIPort{HostPort: uint16(pm.HostPort), ContainerPort: uint16(pm.ContainerPort), Protocol: pm.Protocol}
		if pm.HostIP != "" {
			ip, err := netip.ParseAddr(pm.HostIP)
			if err != nil {
				return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("port mapping host IP %q: %v", pm.HostIP, err), "")
			}
			port.HostIP = ip
		}
		req.Ports = append(req.Ports, port)
	}
	return nil
}

// callErr turns a failed call to podnetd into a CNI error: podnetd's
// own answer as it is, an unreachable podnetd as code (try again later
// for attachments, not available for STATUS) naming podnetd and its
// socket.
func callErr(err error, op string, code uint) error {
	var ue *admin.UnreachableError
	if errors.As(err, &ue) {
		return types.NewError(code, fmt.Sprintf("podnet: %s: podnetd is not running or not reachable at %s (start it: systemctl start podnetd)", op, ue.Socket), err.Error())
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("podnet: %s: %v", op, err), "")
}

// Add asks podnetd for the attachment (address, veth pair on the
// network's bridge, published ports, DNS records), then moves the
// container end into the container and configures it. If that fails, the
// attachment is removed again: a failed ADD leaves nothing.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, req, err := load(args)
	if err != nil {
		return err
	}
	if conf.RawPrevResult != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "podnet must be the first plugin of the network configuration (it got a previous result)", "")
	}
	if err := attachRequest(conf, args, &req); err != nil {
		return err
	}
	cl := p.podnetd(conf)
	ctx, cancel := p.ctx()
	defer cancel()
	var res admin.CNIResult
	if err := cl.Post(ctx, "/v1/cni/add", req, &res); err != nil {
		return callErr(err, "ADD", types.ErrTryAgainLater)
	}
	var out types.Result
	result, err := p.configure(args, res)
	if err == nil {
		out, err = result.GetAsVersion(conf.CNIVersion)
	}
	if err != nil {
		if derr := cl.Post(context.WithoutCancel(ctx), "/v1/cni/del", req, nil); derr != nil {
			fmt.Fprintf(p.stderr(), "podnet: undoing the failed ADD: %v\n", derr)
		}
		return types.NewError(types.ErrInternal, fmt.Sprintf("podnet: ADD: %v", err), "")
	}
	return out.PrintTo(p.stdout())
}

// configure sets up the container end and builds the CNI result.
func (p *Plugin) configure(args *skel.CmdArgs, res admin.CNIResult) (*current.Result, error) {
	c, err := openContainer(args.Netns)
	if err != nil {
		return nil, err
	}
	defer c.close()
	l, err := c.setup(p.Host, res, args.IfName)
	if err != nil {
		_ = c.remove(args.IfName)
		return nil, err
	}
	r := &current.Result{CNIVersion: current.ImplementedSpecVersion, Interfaces: []*current.Interface{
		{Name: res.HostIface, Mac: hostMAC(p.Host, res.HostIface)},
		{Name: args.IfName, Mac: l.Attrs().HardwareAddr.String(), Mtu: res.MTU, Sandbox: args.Netns},
	}}
	for _, a := range res.IPs {
		r.IPs = append(r.IPs, &current.IPConfig{Interface: current.Int(1), Address: *ipNet(a.Address), Gateway: gwIP(a.Gateway)})
	}
	for _, rt := range res.Routes {
		r.Routes = append(r.Routes, &types.Route{Dst: *ipNet(rt.Dst), GW: rt.GW.AsSlice()})
	}
	for _, ns := range res.DNS.Nameservers {
		r.DNS.Nameservers = append(r.DNS.Nameservers, ns.String())
	}
	r.DNS.Search = res.DNS.Search
	return r, nil
}

func hostMAC(h *netlink.Handle, name string) string {
	l, err := h.LinkByName(name)
	if err != nil {
		return ""
	}
	return l.Attrs().HardwareAddr.String()
}

func gwIP(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return a.AsSlice()
}

// Del asks podnetd to remove the attachment (an unknown one is fine).
// When podnetd cannot be reached, it deletes the container's interface
// (its host end goes with it) and succeeds: the runtime can remove the
// container, and podnetd releases the address when it returns (it sweeps
// attachments whose interfaces are gone).
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, req, err := load(args)
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	err = p.podnetd(conf).Post(ctx, "/v1/cni/del", req, nil)
	var ue *admin.UnreachableError
	if err == nil || !errors.As(err, &ue) {
		if err != nil {
			return callErr(err, "DEL", types.ErrTryAgainLater)
		}
		return nil
	}
	if args.Netns != "" {
		c, oerr := openContainer(args.Netns)
		if oerr == nil {
			defer c.close()
			if rerr := c.remove(args.IfName); rerr != nil {
				return callErr(err, "DEL", types.ErrTryAgainLater)
			}
		} else if !errors.Is(oerr, errNoNetNS) {
			return callErr(err, "DEL", types.ErrTryAgainLater)
		}
	}
	fmt.Fprintf(p.stderr(), "podnet: DEL: %v; removed the container's interface, podnetd releases the address when it returns\n", err)
	return nil
}

// Check compares the attachment with the previous result and verifies
// both sides: podnetd the host side (record, address reservation,
// interface on the bridge), the plugin the container side (interface,
// addresses, routes).
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, req, err := load(args)
	if err != nil {
		return err
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	ctx, cancel := p.ctx()
	defer cancel()
	var res admin.CNIResult
	if err := p.podnetd(conf).Post(ctx, "/v1/cni/check", req, &res); err != nil {
		return callErr(err, "CHECK", types.ErrTryAgainLater)
	}
	if conf.PrevResult != nil {
		prev, err := current.NewResultFromResult(conf.PrevResult)
		if err != nil {
			return types.NewError(types.ErrDecodingFailure, err.Error(), "")
		}
		if err := samePrevIPs(prev, res); err != nil {
			return types.NewError(types.ErrInternal, "podnet: CHECK: "+err.Error(), "")
		}
	}
	c, err := openContainer(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, "podnet: CHECK: "+err.Error(), "")
	}
	defer c.close()
	if err := c.check(res, args.IfName); err != nil {
		return types.NewError(types.ErrInternal, "podnet: CHECK: "+err.Error(), "")
	}
	return nil
}

// samePrevIPs: the previous result's addresses are the attachment's.
func samePrevIPs(prev *current.Result, res admin.CNIResult) error {
	for _, ip := range prev.IPs {
		found := false
		for _, a := range res.IPs {
			found = found || ip.Address.String() == ipNet(a.Address).String()
		}
		if !found {
			return fmt.Errorf("address %s of the previous result is not the attachment's", ip.Address.String())
		}
	}
	return nil
}

// GC removes the network's attachments the runtime no longer lists.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := cniconf.Parse(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	req := admin.CNIGCRequest{Network: conf.Name, Subnet: conf.Subnet, Valid: []admin.CNIAttachmentRef{}}
	for _, a := range conf.ValidAttachments {
		req.Valid = append(req.Valid, admin.CNIAttachmentRef{ContainerID: a.ContainerID, IfName: a.IfName})
	}
	ctx, cancel := p.ctx()
	defer cancel()
	var rep admin.CNIGCReport
	if err := p.podnetd(conf).Post(ctx, "/v1/cni/gc", req, &rep); err != nil {
		return callErr(err, "GC", types.ErrTryAgainLater)
	}
	return nil
}

// Status succeeds when podnetd is up, ready, reaches etcd and has the
// network; otherwise it fails with code 50 naming what is missing.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := cniconf.Parse(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st admin.CNIStatus
	if err := p.podnetd(conf).Post(ctx, "/v1/cni/status", admin.CNIRequest{Network: conf.Name, Subnet: conf.Subnet}, &st); err != nil {
		return callErr(err, "STATUS", types.ErrPluginNotAvailable)
	}
	if !st.Ready {
		return types.NewError(types.ErrPluginNotAvailable, "podnet: STATUS: podnetd cannot serve ADD: "+st.Reason, "")
	}
	return nil
}

func (p *Plugin) stdout() io.Writer {
	if p.Stdout != nil {
		return p.Stdout
	}
	return os.Stdout
}

func (p *Plugin) stderr() io.Writer {
	if p.Stderr != nil {
		return p.Stderr
	}
	return os.Stderr
}
