package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/accounts"
)

// runPasswd reads a password from standard input and prints its bcrypt
// hash (or, with -argon2id, its argon2id hash), for password_hash in the
// config file, so that no plain password needs to be written there. With
// -token it reads nothing and prints a new random device token and its
// SHA-256, for token_sha256.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost")
	argon := fs.Bool("argon2id", false, "print an argon2id hash (t=3, m=64 MiB, p=4); for console users only: devices and units need bcrypt")
	token := fs.Bool("token", false, "print a new random token (a device's or unit's MQTT password) and its SHA-256 for token_sha256")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *token {
		tok, sum := newDeviceToken()
		fmt.Fprintf(stdout, "token: %s\ntoken_sha256: %s\n", tok, sum)
		return 0
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "password: ")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "skywatch passwd:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "skywatch passwd: empty password")
		return 1
	}
	var hash string
	if *argon {
		hash, err = accounts.HashPasswordArgon2id(pw)
	} else {
		var b []byte
		b, err = bcrypt.GenerateFromPassword([]byte(pw), *cost)
		hash = string(b)
	}
	if err != nil {
		fmt.Fprintln(stderr, "skywatch passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

// deviceTokenBytes is a token's randomness: 160 bits, past any guessing,
// so that a fast SHA-256 is as safe as a slow bcrypt hash.
const deviceTokenBytes = 20

// newDeviceToken returns a random token, in hex, and the hex SHA-256 of
// that text, which the device sends as its password.
func newDeviceToken() (token, sum string) {
	b := make([]byte, deviceTokenBytes)
	_, _ = rand.Read(b)
	token = hex.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:])
}
