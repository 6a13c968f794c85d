package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/skywatch/skywatch/recorder"
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
	warnings, err := checkRecordings(s)
	if err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%s\n", *path, indent(err.Error()))
		return 1
	}
	for _, w := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s is valid: %d cameras\n", *path, len(s.ingest.Cameras))
	return 0
}

// checkRecordings checks the recording keys against the disk, and warns
// of cameras that record the sub stream without having one (they record
// the main stream).
func checkRecordings(s *settings) ([]string, error) {
	warnings, err := s.recorder.Check()
	if err != nil {
		return nil, err
	}
	subs := map[string]bool{}
	for _, c := range s.ingest.Cameras {
		subs[c.ID] = c.SubURL != ""
	}
	for i, c := range s.recorder.Cameras {
		if c.Record != recorder.RecordOff && c.Stream == recorder.StreamSub && !subs[c.ID] {
			warnings = append(warnings, fmt.Sprintf("cameras[%d].record_stream: camera %s has no sub stream; its main stream is recorded", i, c.ID))
		}
	}
	return warnings, nil
}

// indent puts each line of a joined error on its own indented line.
func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}
