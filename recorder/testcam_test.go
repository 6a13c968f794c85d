package recorder

import (
	"log/slog"
	"testing"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// startTestCamera starts a simulated camera serving paths; it stops at the
// end of the test.
func startTestCamera(t *testing.T, paths ...hardware.CameraPath) *hardware.Camera {
	t.Helper()
	cam := hardware.NewCamera(hardware.CameraConfig{Paths: paths})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// startSource starts an ingest manager pulling cfg's cameras; it stops at
// the end of the test.
func startSource(t *testing.T, cfg ingest.Config, log *slog.Logger) *ingest.Manager {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := ingest.NewManager(cfg, log)
	m.Start()
	t.Cleanup(m.Close)
	return m
}
