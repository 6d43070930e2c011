package main

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// quietHandler passes records to its Handler, except those below warning
// level while quiet is set. The node's and the P2P layer's loggers go
// through one, set while --regtest-premine mines: each pre-mined block
// would otherwise log two lines ("submitted block accepted", "found block
// announced before validation"), hundreds at start-up, and the daemon logs
// one summary line instead. Warnings and errors still pass.
type quietHandler struct {
	slog.Handler
	quiet *atomic.Bool
}

// Enabled implements slog.Handler.
func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelWarn && h.quiet.Load() {
		return false
	}
	return h.Handler.Enabled(ctx, l)
}

// Handle implements slog.Handler. It checks quiet again: a caller may skip
// Enabled (slog.Logger.Handler().Handle).
func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && h.quiet.Load() {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h quietHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(attrs), h.quiet}
}

// WithGroup implements slog.Handler.
func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name), h.quiet}
}
