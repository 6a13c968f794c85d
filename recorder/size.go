package recorder

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In YAML it is an integer or a number with a
// unit: "500MB", "2TB", "1.5GiB" (KB, MB, GB, TB are powers of 1000; KiB,
// MiB, GiB, TiB powers of 1024).
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSize parses a size as YAML gives it.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (examples: 500MB, 2TB, 1.5GiB)", s)
	}
	return Size(f * mult), nil
}

// UnmarshalYAML reads an integer or a size with a unit.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		// yaml does not say where an Unmarshaler's error is.
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// String formats the size with the largest binary unit that keeps it above
// 1, to one decimal.
func (s Size) String() string {
	f := float64(s)
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if f >= u.mult {
			return strings.TrimSuffix(strconv.FormatFloat(f/u.mult, 'f', 1, 64), ".0") + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}
