package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "skywatch.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fc, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s, err := buildSettings(fc)
	if err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%s\n", *path, indent(err.Error()))
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d cameras\n", *path, len(s.ingest.Cameras))
	return 0
}

// indent puts each line of a joined error on its own indented line.
func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}
