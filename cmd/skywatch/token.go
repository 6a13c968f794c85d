package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/skywatch/skywatch/accounts"
)

// runToken prints a new random API token (for a video-wall decoder, a WHEP
// player or another program) and the lines of the config's tokens: list
// that accept it. The config holds only the token's SHA-256; the token is
// printed this once, to give to the program.
func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "wall-1", "the token's name, as the audit log shows it (token:NAME)")
	role := fs.String("role", string(accounts.RoleViewer), "viewer, operator, supervisor or admin: bounds what it may read")
	area := fs.String("area", "", "the area it sees, with the areas below it (empty: everywhere)")
	cameras := fs.String("cameras", "", "comma-separated camera IDs: the only ones it sees (empty: all of its area)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	tok, sum := accounts.NewToken()
	tc := accounts.TokenConfig{Name: *name, Role: accounts.Role(*role), Area: *area, TokenSHA256: sum}
	if *cameras != "" {
		tc.Cameras = strings.Split(*cameras, ",")
	}
	// Areas and cameras are checked by `skywatch check` against the file.
	if err := accounts.ValidateTokens([]accounts.TokenConfig{tc}, func(string) bool { return true }, nil); err != nil {
		fmt.Fprintln(stderr, "skywatch token:", strings.ReplaceAll(err.Error(), "tokens[0].", ""))
		return 2
	}
	fmt.Fprintf(stdout, "# The token, shown this once: give it to the player as\n#   Authorization: Bearer %s\n", tok)
	fmt.Fprintf(stdout, "token: %s\n\n# Paste under tokens: in the config file, then reload (systemctl reload skywatch):\n", tok)
	fmt.Fprintf(stdout, "  - name: %s\n    role: %s\n", tc.Name, tc.Role)
	if tc.Area != "" {
		fmt.Fprintf(stdout, "    area: %s\n", tc.Area)
	}
	if len(tc.Cameras) > 0 {
		fmt.Fprintf(stdout, "    cameras: [%s]\n", strings.Join(tc.Cameras, ", "))
	}
	fmt.Fprintf(stdout, "    token_sha256: %s\n", sum)
	return 0
}
