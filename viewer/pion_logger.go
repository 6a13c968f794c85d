package viewer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLoggers routes pion's logs into slog, one level lower than pion's
// own: pion warns about many things that browsers do routinely.
type pionLoggers struct {
	logger *slog.Logger
}

var _ logging.LoggerFactory = pionLoggers{}

// NewLogger implements logging.LoggerFactory.
func (f pionLoggers) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{logger: f.logger.With("pion", scope)}
}

type pionLogger struct {
	logger *slog.Logger
}

func (l pionLogger) log(level slog.Level, format string, args ...any) {
	if !l.logger.Enabled(context.Background(), level) {
		return
	}
	l.logger.Log(context.Background(), level, fmt.Sprintf(format, args...))
}

func (l pionLogger) Trace(string)                      {}
func (l pionLogger) Tracef(string, ...any)             {}
func (l pionLogger) Debug(string)                      {}
func (l pionLogger) Debugf(string, ...any)             {}
func (l pionLogger) Info(msg string)                   { l.log(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.log(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.log(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.log(slog.LevelDebug, format, args...) }
func (l pionLogger) Error(msg string)                  { l.log(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.log(slog.LevelWarn, format, args...) }
