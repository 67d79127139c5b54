package store

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/podnet/podnet/internal/fsutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// Lifetimes of the embedded member's own peer certificates. They are
// renewed at start once less than peerRenewBefore is left.
const (
	peerCertLifetime = 10 * 365 * 24 * time.Hour
	peerRenewBefore  = 30 * 24 * time.Hour
)

// peerTLS returns the TLS settings of the embedded member's peer
// listener: a private CA and one certificate for host (the peer URL's
// address) that serves and authenticates, kept in dir (0700, keys 0600)
// and made on first use. With client-certificate authentication on, a
// local user who connects to the loopback peer port — which takes raft
// messages, i.e. writes — gets no further than the TLS handshake: only
// holders of a certificate from this CA, which only root can read, may
// talk to it.
func peerTLS(dir, host string) (transport.TLSInfo, error) {
	ca, cert, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "peer.crt"), filepath.Join(dir, "peer.key")
	info := transport.TLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: ca, ClientCertAuth: true}
	if peerCertUsable(ca, cert, key, host) {
		return info, nil
	}
	if err := makePeerCerts(ca, cert, key, host); err != nil {
		return info, fmt.Errorf("embedded etcd peer certificates in %s: %w", dir, err)
	}
	return info, nil
}

// peerCertUsable says whether the files exist, parse, chain to the CA,
// name host and are valid for a while yet.
func peerCertUsable(caFile, certFile, keyFile, host string) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < peerRenewBefore {
		return false
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// makePeerCerts writes a fresh CA and a certificate for host signed by it.
func makePeerCerts(caFile, certFile, keyFile, host string) error {
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "podnet embedded etcd CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(peerCertLifetime),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, caKey, err := issue(caTmpl, nil, nil)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "podnet embedded etcd peer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(peerCertLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, key, err := issue(tmpl, caCert, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	// The key first: a certificate never names a key that is not there.
	for _, f := range []struct {
		path  string
		block *pem.Block
	}{
		{keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}},
		{certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}},
		{caFile, &pem.Block{Type: "CERTIFICATE", Bytes: caDER}},
	} {
		if err := fsutil.WriteFileAtomic(f.path, pem.EncodeToMemory(f.block), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// issue makes a P-256 key and a certificate of tmpl for it, signed by
// parent's key (self-signed when parent is nil).
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	return der, key, err
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
