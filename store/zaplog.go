package store

import (
	"context"
	"log/slog"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore sends the embedded etcd's zap logs to podnet's slog logger, at
// warn and above. Closing the member makes etcd log its own listeners
// closing as errors with stack traces; those are expected and go to debug.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func newZapLogger(l *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{log: l.With("component", "etcd")})
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(append([]zapcore.Field{}, c.fields...), fs...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field{}, c.fields...), fs...) {
		f.AddTo(enc)
	}
	attrs := make([]any, 0, 2*len(enc.Fields))
	text := e.Message
	for k, v := range enc.Fields {
		attrs = append(attrs, k, v)
		if s, ok := v.(string); ok {
			text += " " + s
		}
	}
	lvl := slog.LevelWarn
	switch {
	case strings.Contains(text, "server closed") || strings.Contains(text, "Server closed") ||
		strings.Contains(text, "use of closed network connection"),
		// Expected for a loopback-only single member without auth.
		strings.Contains(text, "single port"), strings.Contains(text, "simple token"):
		lvl = slog.LevelDebug
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	}
	c.log.Log(context.Background(), lvl, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }
