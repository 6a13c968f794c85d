package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

const usage = `usage: skywatch <command> [flags]

commands:
  serve -config FILE   run Skywatch with a config file
  check -config FILE   validate a config file and print every problem with its key
  backup -config FILE -out FILE
                       write a consistent copy of the alarm store and records, while Skywatch runs or not
  restore -config FILE -in FILE
                       put a backup back into an empty data directory (Skywatch stopped)
  demo                 run simulated cameras, alarm devices and Skywatch on embedded defaults
  passwd [-argon2id]   read a password on standard input, print its bcrypt (or argon2id) hash for password_hash
  token [-name N -role R -area A -cameras C]
                       print a new API token (for a WHEP player or video wall) and its tokens: lines
  sim devices          run simulated alarm devices against a broker
  sim units            run simulated patrol units against a broker
  sim camera           serve one simulated RTSP camera (a vendor's paths, digest auth) to try a setup with
  sim load             measure the alarm intake under a flood (see sim load -h)
  sim restart          measure a restart with thousands of devices (see sim restart -h)
  sim record           measure continuous recording of many 2 Mbit/s cameras (see sim record -h)
  sim fanout           measure relaying one camera to many WebRTC viewers, beside MediaMTX and go2rtc (see sim fanout -h)
  sim cluster          measure events and viewers with 1, 2, 3 cluster nodes on this machine (see sim cluster -h)
`

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return runRestore(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "passwd":
		return runPasswd(args[1:], os.Stdin, stdout, stderr)
	case "token":
		return runToken(args[1:], stdout, stderr)
	case "sim":
		if len(args) > 1 && args[1] == "load" {
			return runLoad(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "restart" {
			return runRestart(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "record" {
			return runRecordBench(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "fanout" {
			return runFanoutBench(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "cluster" {
			return runClusterBench(ctx, args[2:], stdout, stderr)
		}
		return runSim(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "skywatch: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
