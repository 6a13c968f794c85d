package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/accounts"
)

// TestPasswd checks that both kinds of hash that passwd prints let the
// user log in.
func TestPasswd(t *testing.T) {
	for _, args := range [][]string{{"-cost", "4"}, {"-argon2id"}} {
		var stdout, stderr bytes.Buffer
		if code := runPasswd(args, strings.NewReader("s3cret pw\n"), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		hash := strings.TrimSuffix(stdout.String(), "\n")
		d, err := accounts.NewDirectory([]accounts.UserConfig{{Username: "u", Role: accounts.RoleViewer, PasswordHash: hash}})
		if err != nil {
			t.Fatalf("%v: %s: %v", args, hash, err)
		}
		if _, err := d.Authenticate("u", "s3cret pw"); err != nil {
			t.Errorf("%v: %s: %v", args, hash, err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runPasswd(nil, strings.NewReader("\n"), &stdout, &stderr); code != 1 || stdout.Len() != 0 {
		t.Errorf("empty password: exit %d, printed %q", code, stdout.String())
	}
}
