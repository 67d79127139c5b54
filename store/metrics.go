package store

import (
	"context"
	"strings"
	"time"

	"github.com/podnet/podnet/internal/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// dialOptions instrument the etcd client: every unary request (each
// attempt of the client's own retries, which wrap this interceptor) is
// timed by method, and its failures counted by method and gRPC code.
// Watches and lease keep-alives are streams; their restarts are counted
// where Follow and KeepAlive start them again.
func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(observeUnary)}
}

func observeUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoke(ctx, method, req, reply, cc, opts...)
	name := rpcName(method)
	metrics.Since(metrics.EtcdRequestDuration.WithLabelValues(name), start)
	if err != nil {
		metrics.EtcdRequestErrors.WithLabelValues(name, status.Code(err).String()).Inc()
	}
	return err
}

// rpcName is the method of a gRPC full method name
// ("/etcdserverpb.KV/Range" → "Range"): the etcd API's, a bounded set.
func rpcName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// countWatch counts keys and bytes a watch of prefix received.
func countWatch(prefix string, keys, bytes int) {
	l := prefixLabel(prefix)
	metrics.EtcdWatchKeys.WithLabelValues(l).Add(float64(keys))
	metrics.EtcdWatchBytes.WithLabelValues(l).Add(float64(bytes))
}

// prefixLabel is the first segment of a followed prefix ("ipam/10.1.0.0-16/"
// → "ipam"): the key layout's top level, never a pool or a host.
func prefixLabel(prefix string) string {
	first, _, _ := strings.Cut(prefix, "/")
	if first == "" {
		return "all"
	}
	return first
}
