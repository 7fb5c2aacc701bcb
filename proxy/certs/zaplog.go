package certs

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapToSlog lets certmagic, which logs with zap, write to corral's slog
// logger, at or above min: its ACME progress and errors belong in the
// same log as everything else. seen, if not nil, also gets each entry's
// message and fields.
func zapToSlog(log *slog.Logger, min zapcore.Level, seen func(msg string, fields map[string]any)) *zap.Logger {
	return zap.New(&slogCore{log: log, min: min, seen: seen})
}

type slogCore struct {
	log    *slog.Logger
	min    zapcore.Level
	fields []zapcore.Field
	seen   func(string, map[string]any)
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.min }

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, min: c.min, seen: c.seen, fields: append(append([]zapcore.Field(nil), c.fields...), fs...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	if c.seen != nil {
		c.seen(e.Message, enc.Fields)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields)+1)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("component", e.LoggerName))
	}
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	level := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		level = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		level = slog.LevelWarn
	case e.Level <= zapcore.DebugLevel:
		level = slog.LevelDebug
	}
	c.log.LogAttrs(context.Background(), level, "certmagic: "+e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }
