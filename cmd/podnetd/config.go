package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/podnet/podnet/clusterdns"
	"github.com/podnet/podnet/internal/metrics"
	"github.com/podnet/podnet/lbannounce"
	"github.com/podnet/podnet/overlay/wireguard"
	"github.com/podnet/podnet/store"
	"github.com/spf13/cobra"
)

// config is every flag of podnetd. Each can also be set through the
// environment as PODNET_<FLAG> (upper case, dashes as underscores), which is
// how the managed plugin passes settings.
type config struct {
	HostName       string
	EtcdEndpoints  []string
	EtcdCACert     string
	EtcdCert       string
	EtcdKey        string
	DataDir        string
	EmbeddedClient string
	EmbeddedPeer   string
	PluginSocket   string
	AdminSocket    string
	DockerHost     string
	PodmanHost     string
	ProcSys        string
	ServiceCIDR    string
	ExternalIPs    []string
	BlockSize      int
	BlockSize6     int
	DefaultPool    string
	DefaultPool6   string
	DefaultPoolLen int
	GCInterval     time.Duration
	GCGrace        time.Duration
	LivenessTTL    time.Duration
	LBLeaseTTL     time.Duration
	IPTables       string
	MTU            int
	LogLevel       string
	LogFormat      string
	LogOutput      string
	AdvertiseAddr  string
	VXLANPort      int
	Encryption     string
	WireGuardPort  int
	DriverName     string
	DNSAddr        string // the flag; validate parses it into dnsAddr
	dnsAddr        netip.Addr
	DNSUpstreams   []string
	ClusterDomain  string
	MetricsAddr    string
	HealthzTimeout time.Duration
	Profiling      bool
	PolicyLog      bool
}

func defaultConfig() *config {
	return &config{
		DataDir:        "/var/lib/podnet",
		PluginSocket:   "/run/docker/plugins/podnet.sock",
		AdminSocket:    "/run/podnet/podnet.sock",
		DockerHost:     "unix:///var/run/docker.sock",
		PodmanHost:     "unix:///run/podman/podman.sock",
		ProcSys:        "/proc/sys",
		ServiceCIDR:    "10.96.0.0/16",
		BlockSize:      26,
		BlockSize6:     122,
		DefaultPool:    "10.208.0.0/12",
		DefaultPool6:   "fd70:6f64:6e65::/48",
		DefaultPoolLen: 24,
		GCInterval:     60 * time.Second,
		GCGrace:        60 * time.Second,
		LivenessTTL:    30 * time.Second,
		LBLeaseTTL:     lbannounce.DefaultTTL,
		IPTables:       "auto",
		MTU:            1500,
		LogLevel:       "info",
		LogFormat:      "text",
		LogOutput:      "stderr",
		VXLANPort:      4789,
		Encryption:     store.EncryptionNone,
		WireGuardPort:  wireguard.DefaultPort,
		ClusterDomain:  clusterdns.DefaultDomain,
		MetricsAddr:    metrics.DefaultAddr,
		HealthzTimeout: time.Minute,
	}
}

func (c *config) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.HostName, "host-name", "", "this host's name in the cluster (default: the system hostname)")
	f.StringSliceVar(&c.EtcdEndpoints, "etcd-endpoints", nil, "external etcd cluster URLs; none = run an embedded single-member etcd")
	f.StringVar(&c.EtcdCACert, "etcd-cacert", "", "CA certificate (PEM) for the etcd server")
	f.StringVar(&c.EtcdCert, "etcd-cert", "", "client certificate (PEM) for etcd")
	f.StringVar(&c.EtcdKey, "etcd-key", "", "client key (PEM) for etcd")
	f.StringVar(&c.DataDir, "data-dir", c.DataDir, "state directory (embedded etcd data)")
	f.StringVar(&c.EmbeddedClient, "embedded-etcd-client-url", "", "where the embedded etcd serves clients (default: unix://<data-dir>/etcd.sock, root only; a TCP URL lets any local user write podnet's state)")
	f.StringVar(&c.EmbeddedPeer, "embedded-etcd-peer-url", "", "embedded etcd peer URL (default: "+store.DefaultEmbeddedPeerURL+", TLS with client certificates podnetd makes in <data-dir>/pki)")
	f.StringVar(&c.PluginSocket, "plugin-socket", c.PluginSocket, "Docker plugin socket; its file name is the driver name")
	f.StringVar(&c.AdminSocket, "admin-socket", c.AdminSocket, "admin API socket (podnetctl)")
	f.StringVar(&c.DockerHost, "docker-host", c.DockerHost, "Docker API, used only by background reconciliation")
	f.StringVar(&c.PodmanHost, "podman-host", c.PodmanHost, "podman's Docker-compatible API (podman system service), followed for the labels and readiness of podman containers attached through the CNI plugin; \"off\" disables it")
	f.StringVar(&c.ProcSys, "proc-sys", c.ProcSys, "where the host's /proc/sys is mounted")
	f.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "service virtual IP range (cluster DNS at its .10)")
	f.StringSliceVar(&c.ExternalIPs, "external-ip-cidrs", nil, "CIDRs services may take external IPs from (the same on every host; none by default: no external IPs). Hosts, their underlay network, etcd and pods are never allowed")
	f.IntVar(&c.BlockSize, "block-size", c.BlockSize, "prefix length of the IPv4 address blocks a host claims")
	f.IntVar(&c.BlockSize6, "block-size-v6", c.BlockSize6, "prefix length of the IPv6 address blocks a host claims")
	f.StringVar(&c.DefaultPool, "default-pool", c.DefaultPool, "range podnet picks IPv4 subnets from when docker network create has no --subnet")
	f.StringVar(&c.DefaultPool6, "default-pool-v6", c.DefaultPool6, "range podnet picks /64s from for --ipv6 without a v6 --subnet")
	f.IntVar(&c.DefaultPoolLen, "default-pool-size", c.DefaultPoolLen, "prefix length of IPv4 subnets picked from --default-pool")
	f.DurationVar(&c.GCInterval, "gc-interval", c.GCInterval, "how often to reconcile with Docker")
	f.DurationVar(&c.GCGrace, "gc-grace", c.GCGrace, "minimum age of anything garbage-collected")
	f.DurationVar(&c.LivenessTTL, "liveness-ttl", c.LivenessTTL, "how long after this host dies other hosts notice")
	f.DurationVar(&c.LBLeaseTTL, "lb-lease-ttl", c.LBLeaseTTL, "how long after this host (or its LAN link) dies another host answers for its L2 LoadBalancer addresses (shorter than --liveness-ttl)")
	f.StringVar(&c.IPTables, "iptables-backend", c.IPTables, "iptables backend for podnet's accepts in Docker's chains: auto, nft or legacy")
	f.IntVar(&c.MTU, "default-mtu", c.MTU, "MTU of bridge networks created without an mtu option")
	f.StringVar(&c.AdvertiseAddr, "advertise-addr", "", "underlay address (or interface) other hosts reach this one at; default: the primary address of the interface holding the default route")
	f.IntVar(&c.VXLANPort, "vxlan-port", c.VXLANPort, "UDP port of VXLAN tunnels (the same on every host)")
	f.StringVar(&c.Encryption, "encryption", c.Encryption, "traffic between hosts: none, or wireguard (every pod and service packet to another host inside WireGuard; the same on every host)")
	f.IntVar(&c.WireGuardPort, "wireguard-port", c.WireGuardPort, "UDP port WireGuard listens on with --encryption wireguard")
	f.StringVar(&c.DriverName, "driver-name", "", "name Docker knows this plugin by, for networks podnetd creates itself (default: the plugin socket's file name)")
	f.StringVar(&c.DNSAddr, "dns-addr", "", "address of podnet's cluster DNS, put on lo (default: the service CIDR's .10); \"off\" disables it")
	f.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "DNS domain of service names (NAME.svc.DOMAIN)")
	f.StringSliceVar(&c.DNSUpstreams, "dns-upstream", nil, "resolvers for names podnet does not know (default: /etc/resolv.conf's)")
	f.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "where to serve Prometheus metrics (http://ADDR/metrics); \"off\" disables them. Any non-loopback address lets whoever reaches it, containers of this host included, read them")
	f.DurationVar(&c.HealthzTimeout, "healthz-timeout", c.HealthzTimeout, "http://METRICS-ADDR/healthz fails when service changes wait this long for the data plane, or the etcd view heard nothing from etcd for this long")
	f.BoolVar(&c.Profiling, "profiling", false, "also serve Go's profiles (http://METRICS-ADDR/debug/pprof/: heap, CPU, goroutines) on the metrics address, for a memory or CPU investigation")
	f.BoolVar(&c.PolicyLog, "policy-log", false, "log the packets network policies deny (at most 10 a second per direction; they are counted in the metrics either way)")
	f.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	f.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	f.StringVar(&c.LogOutput, "log-output", c.LogOutput, "stderr or stdout (a managed plugin logs to stdout: dockerd files plugin stderr as errors)")
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return fromEnv(cmd)
	}
}

// fromEnv applies PODNET_* environment variables to flags not given on the
// command line.
func fromEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(fl *pflagFlag) {
		if err != nil || fl.Changed {
			return
		}
		if v, ok := os.LookupEnv(envName(fl.Name)); ok && v != "" {
			if e := fl.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(fl.Name), v, e)
			}
		}
	})
	return err
}

func (c *config) validate() error {
	if _, err := netip.ParsePrefix(c.ServiceCIDR); err != nil {
		return fmt.Errorf("--service-cidr %q: %w", c.ServiceCIDR, err)
	}
	for _, p := range []string{c.DefaultPool, c.DefaultPool6} {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("default pool %q: %w", p, err)
		}
	}
	if c.BlockSize < 8 || c.BlockSize > 32 {
		return fmt.Errorf("--block-size %d: want 8..32", c.BlockSize)
	}
	if c.BlockSize6 < 64 || c.BlockSize6 > 128 {
		return fmt.Errorf("--block-size-v6 %d: want 64..128", c.BlockSize6)
	}
	if c.MTU < 68 || c.MTU > 65535 {
		return fmt.Errorf("--default-mtu %d: want 68..65535", c.MTU)
	}
	if c.VXLANPort < 1 || c.VXLANPort > 65535 {
		return fmt.Errorf("--vxlan-port %d: want 1..65535", c.VXLANPort)
	}
	if !store.ValidEncryption(c.Encryption) {
		return fmt.Errorf("--encryption %q: want %s or %s", c.Encryption, store.EncryptionNone, store.EncryptionWireGuard)
	}
	if c.WireGuardPort < 1 || c.WireGuardPort > 65535 {
		return fmt.Errorf("--wireguard-port %d: want 1..65535", c.WireGuardPort)
	}
	if c.Encryption == store.EncryptionWireGuard && c.WireGuardPort == c.VXLANPort {
		return fmt.Errorf("--wireguard-port %d is the --vxlan-port: give them different ports", c.WireGuardPort)
	}
	if c.DriverName == "" {
		c.DriverName = driverName(c.PluginSocket)
	}
	dns, err := parseDNSAddr(c.DNSAddr, netip.MustParsePrefix(c.ServiceCIDR))
	if err != nil {
		return err
	}
	c.dnsAddr = dns
	if err := c.validateServices(); err != nil {
		return err
	}
	if err := c.validateLB(); err != nil {
		return err
	}
	if c.MetricsAddr != metrics.Off {
		if _, err := metrics.CheckAddr(c.MetricsAddr); err != nil {
			return err
		}
	}
	if c.HealthzTimeout < 10*time.Second {
		return fmt.Errorf("--healthz-timeout %v: want at least 10s (etcd is asked for progress every 5 s)", c.HealthzTimeout)
	}
	if c.HostName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("no --host-name and the system hostname is unknown: %w", err)
		}
		c.HostName = h
	}
	return nil
}

// dnsOff is the --dns-addr value that turns the cluster DNS off.
const dnsOff = "off"

// parseDNSAddr is --dns-addr, parsed once (validate): the address of the
// cluster DNS (default the service CIDR's .10), or the invalid Addr when
// it is off. Everything else reads config.clusterDNS.
func parseDNSAddr(flag string, serviceCIDR netip.Prefix) (netip.Addr, error) {
	switch flag {
	case dnsOff:
		return netip.Addr{}, nil
	case "":
		a := serviceCIDR.Masked().Addr()
		for range 10 {
			a = a.Next()
		}
		return a, nil
	}
	a, err := netip.ParseAddr(flag)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--dns-addr %q: want an IP address or %s", flag, dnsOff)
	}
	return a.Unmap(), nil
}

// clusterDNS is the cluster DNS address; false when --dns-addr is off.
func (c *config) clusterDNS() (netip.Addr, bool) { return c.dnsAddr, c.dnsAddr.IsValid() }
