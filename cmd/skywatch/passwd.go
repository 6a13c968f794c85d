package main

import (
	"bufio"
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
// config file, so that no plain password needs to be written there.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", bcrypt.DefaultCost, "bcrypt cost")
	argon := fs.Bool("argon2id", false, "print an argon2id hash (t=3, m=64 MiB, p=4); for console users only: devices and units need bcrypt")
	if err := fs.Parse(args); err != nil {
		return 2
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
