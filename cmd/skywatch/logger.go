package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// newLogger builds the process logger from the log section.
func newLogger(cfg logConfig, w io.Writer) (*slog.Logger, error) {
	return newLevelLogger(cfg, w, new(slog.LevelVar))
}

// parseLevel is log.level's value.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("log.level: %q is not debug, info, warn or error", s)
	}
}

// newLevelLogger is newLogger whose level is level, set from the log
// section: a reload of the config changes it (log.level is live).
func newLevelLogger(cfg logConfig, w io.Writer, level *slog.LevelVar) (*slog.Logger, error) {
	l, err := parseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log.format: %q is not text or json", cfg.Format)
	}
}
