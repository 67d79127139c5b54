package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// DefaultPrefix is where podnet keeps everything in etcd.
const DefaultPrefix = "/podnet/v1/"

// Config says how to reach etcd.
type Config struct {
	Endpoints []string
	// CACert, Cert and Key are PEM file paths for TLS client authentication;
	// all optional.
	CACert, Cert, Key string
	// DialTimeout bounds the initial connection (default 5 s).
	DialTimeout time.Duration
	// RequestTimeout bounds every single call (default 5 s).
	RequestTimeout time.Duration
	// Prefix is prepended to every key (default DefaultPrefix).
	Prefix string
	// ProgressInterval is how often the watches of Follow ask etcd for a
	// progress notification (default DefaultProgressInterval).
	ProgressInterval time.Duration
	Logger           *slog.Logger
}

// Store is a thin, deadline-carrying JSON layer over an etcd v3 client.
type Store struct {
	cli       *clientv3.Client
	prefix    string
	timeout   time.Duration
	endpoints []string
	log       *slog.Logger
	stats     watchCounters
	progress  sync.Once // starts requestProgress with the first Follow
	every     time.Duration
}

// KV is one key read from etcd. Key is relative to the store prefix.
type KV struct {
	Key    string
	Value  []byte
	ModRev int64
	// Lease is the lease the key is bound to (0: none).
	Lease LeaseID
}

// Decode unmarshals the value into v.
func (kv KV) Decode(v any) error {
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return fmt.Errorf("decode %q: %w", kv.Key, err)
	}
	return nil
}

// Open connects to etcd. It does not wait for the cluster to answer: the
// first call does, under its own deadline.
func Open(cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("etcd: no endpoints given")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		TLS:                  tlsCfg,
		Logger:               zap.NewNop(),
		// gRPC's default reconnect backoff grows to two minutes: a watch
		// would notice etcd's return that late. Calls reset the backoff
		// themselves (call.go); this bounds it for the watches. The
		// interceptors of dialOptions measure every request.
		DialOptions: append(dialOptions(), grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 2 * time.Second,
		})),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &Store{cli: cli, prefix: cfg.Prefix, timeout: cfg.RequestTimeout,
		endpoints: cfg.Endpoints, log: cfg.Logger, every: cfg.ProgressInterval}, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CACert == "" && cfg.Cert == "" && cfg.Key == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcd CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA certificate %s: no PEM certificate found", cfg.CACert)
		}
		t.RootCAs = pool
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, fmt.Errorf("etcd client TLS: give both --etcd-cert and --etcd-key, or neither")
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate %s: %w", cfg.Cert, err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// Close releases the client.
func (s *Store) Close() error { return s.cli.Close() }

// Endpoints returns the etcd endpoints this store talks to.
func (s *Store) Endpoints() []string { return s.endpoints }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) abs(key string) string { return s.prefix + key }
func (s *Store) rel(key []byte) string { return strings.TrimPrefix(string(key), s.prefix) }

// Ping checks that etcd answers within the request timeout.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.call(ctx, "ping", "ping", func(c context.Context) error {
		_, err := s.cli.Get(c, s.abs("ping"), clientv3.WithCountOnly())
		return err
	})
	return err
}

// get reads one key (nil when absent).
func (s *Store) get(ctx context.Context, key string) (*mvccpb.KeyValue, error) {
	var resp *clientv3.GetResponse
	_, err := s.call(ctx, "get", key, func(c context.Context) (err error) {
		resp, err = s.cli.Get(c, s.abs(key))
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// Get reads key into v and returns its ModRevision.
func (s *Store) Get(ctx context.Context, key string, v any) (int64, error) {
	kv, err := s.GetKV(ctx, key)
	if err != nil {
		return 0, err
	}
	if v != nil {
		if err := kv.Decode(v); err != nil {
			return 0, err
		}
	}
	return kv.ModRev, nil
}

// GetKV reads key as it is stored, with its lease.
func (s *Store) GetKV(ctx context.Context, key string) (KV, error) {
	kv, err := s.get(ctx, key)
	if err != nil {
		return KV{}, err
	}
	if kv == nil {
		return KV{}, fmt.Errorf("%q: %w", key, ErrNotFound)
	}
	return s.kv(kv), nil
}

func (s *Store) kv(kv *mvccpb.KeyValue) KV {
	return KV{Key: s.rel(kv.Key), Value: kv.Value, ModRev: kv.ModRevision, Lease: LeaseID(kv.Lease)}
}

// Create writes key only if it does not exist yet (ErrExists otherwise) and
// returns the new ModRevision.
func (s *Store) Create(ctx context.Context, key string, v any) (int64, error) {
	ok, rev, err := s.Txn(ctx, []Cmp{Absent(key)}, []Op{Put(key, v)})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%q: %w", key, ErrExists)
	}
	return rev, nil
}

// Put writes key unconditionally.
func (s *Store) Put(ctx context.Context, key string, v any) error {
	_, _, err := s.Txn(ctx, nil, []Op{Put(key, v)})
	return err
}

// Update writes key only if its ModRevision is still modRev (ErrConflict
// otherwise).
func (s *Store) Update(ctx context.Context, key string, modRev int64, v any) error {
	ok, _, err := s.Txn(ctx, []Cmp{ModRevIs(key, modRev)}, []Op{Put(key, v)})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%q: %w", key, ErrConflict)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, _, err := s.Txn(ctx, nil, []Op{Delete(key)})
	return err
}

// DeletePrefix removes every key under prefix.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	_, _, err := s.Txn(ctx, nil, []Op{DeletePrefix(prefix)})
	return err
}

// List returns every key under prefix, sorted by key, and the store
// revision the listing was taken at (to Watch from rev+1).
func (s *Store) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	resp, err := s.rangeGet(ctx, "list", prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, 0, err
	}
	return s.kvs(resp), resp.Header.Revision, nil
}

// Count returns how many keys exist under prefix.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	resp, err := s.rangeGet(ctx, "count", prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Count, nil
}

// ListRange returns keys in [from, to) (relative), sorted.
func (s *Store) ListRange(ctx context.Context, from, to string) ([]KV, error) {
	resp, err := s.rangeGet(ctx, "list", from, clientv3.WithRange(s.abs(to)), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	return s.kvs(resp), nil
}

func (s *Store) rangeGet(ctx context.Context, op, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	var resp *clientv3.GetResponse
	_, err := s.call(ctx, op, key, func(c context.Context) (err error) {
		resp, err = s.cli.Get(c, s.abs(key), opts...)
		return err
	})
	return resp, err
}

func (s *Store) kvs(resp *clientv3.GetResponse) []KV {
	out := make([]KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, s.kv(kv))
	}
	return out
}
