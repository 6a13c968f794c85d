package recorder

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "1048576": 1 << 20, "500MB": 500e6, "2TB": 2e12, "1.5GiB": 3 << 29,
		"64 MiB": 64 << 20, "10KB": 10e3, "7B": 7,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MB", "2PB", "MB", "1e30", "ten"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) took it", in)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{
		512: "512B", 1 << 20: "1MiB", 3 << 29: "1.5GiB", 900e12: "818.5TiB", 32 << 20: "32MiB",
	} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}

func TestSizeYAMLNamesTheLine(t *testing.T) {
	var c struct {
		MaxBytes Size `yaml:"max_bytes"`
	}
	if err := yaml.Unmarshal([]byte("max_bytes: 2TB\n"), &c); err != nil || c.MaxBytes != 2e12 {
		t.Fatalf("2TB: %d, %v", c.MaxBytes, err)
	}
	err := yaml.Unmarshal([]byte("\n\nmax_bytes: 9PB\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("9PB: %v, want an error naming line 3", err)
	}
}
