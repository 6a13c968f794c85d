package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
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

// passwd -token prints a fresh random token and the SHA-256 that
// token_sha256 takes, which the alarm config accepts.
func TestPasswdToken(t *testing.T) {
	seen := map[string]bool{}
	for range 2 {
		var stdout, stderr bytes.Buffer
		if code := runPasswd([]string{"-token"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		var tok, sum string
		if _, err := fmt.Sscanf(stdout.String(), "token: %s\ntoken_sha256: %s\n", &tok, &sum); err != nil {
			t.Fatalf("%q: %v", stdout.String(), err)
		}
		if len(tok) < 32 || seen[tok] {
			t.Errorf("token %q: short or repeated", tok)
		}
		seen[tok] = true
		if h := sha256.Sum256([]byte(tok)); hex.EncodeToString(h[:]) != sum {
			t.Errorf("token_sha256 %s is not the SHA-256 of %s", sum, tok)
		}
		cfg := alarms.Config{Devices: []alarms.DeviceConfig{{ID: "d", TokenSHA256: sum}}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("config with token_sha256: %v", err)
		}
	}
}
