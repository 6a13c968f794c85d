package alarms_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
)

// tryConnect connects as user from the loopback address from (such as
// 127.0.0.2) and tells whether the broker accepted.
func tryConnect(t *testing.T, url, from, user, pass string) bool {
	t.Helper()
	// The test config's ids are its user names; a clean session may add ":...".
	o := paho.NewClientOptions().AddBroker(url).SetClientID(user + ":" + uniq("c-")).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).
		SetConnectTimeout(30 * time.Second).
		SetProtocolVersion(4). // no second try with MQTT 3.1 after a refusal
		SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second})
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(60 * time.Second) {
		t.Fatalf("connect %s from %s: timeout", user, from)
	}
	if tok.Error() != nil {
		return false
	}
	c.Disconnect(0)
	return true
}

// metricValues sums the intake's metrics by name and, for labelled ones,
// by name{label=value,...} too.
func metricValues(t *testing.T, in *alarms.Intake) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(in.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			got[mf.GetName()] += v
			if len(m.GetLabel()) > 0 {
				var vals []string
				for _, l := range m.GetLabel() {
					vals = append(vals, l.GetName()+"="+l.GetValue())
				}
				got[mf.GetName()+"{"+strings.Join(vals, ",")+"}"] += v
			}
		}
	}
	return got
}

// authConfig is testConfig with back-offs that outlast any test run, so
// that nothing depends on the machine's speed.
func authConfig(t *testing.T, auth alarms.AuthConfig) alarms.Config {
	cfg := testConfig(t)
	auth.BaseDelay, auth.MaxDelay, auth.UserMaxDelay = time.Hour, time.Hour, time.Hour
	cfg.MQTT.Auth = auth
	return cfg
}

// Wrong passwords for one user name from one address put that pair in
// back-off: the next attempt is refused at once, without a bcrypt check,
// even with the right password. The real device, from another address,
// still logs in. Refusals are counted.
func TestLoginBackoffPerAddress(t *testing.T) {
	in := startIntake(t, authConfig(t, alarms.AuthConfig{PairFailures: 3}), newStore(t))
	url := "tcp://" + in.BrokerAddr()
	for i := range 3 {
		if tryConnect(t, url, "127.0.0.2", "d3", "guess") {
			t.Fatalf("guess %d accepted", i)
		}
	}
	before := metricValues(t, in)
	if before["skywatch_alarms_login_bcrypt_total"] != 3 {
		t.Errorf("bcrypt checks after 3 guesses: %v, want 3", before["skywatch_alarms_login_bcrypt_total"])
	}
	if tryConnect(t, url, "127.0.0.2", "d3", "pw-d3") {
		t.Fatal("right password from the guessing address during its back-off: accepted")
	}
	after := metricValues(t, in)
	if after["skywatch_alarms_login_bcrypt_total"] != 3 {
		t.Errorf("a refusal in back-off cost a bcrypt check")
	}
	if got := after["skywatch_alarms_logins_refused_total{reason=backoff_user_address,via=mqtt}"]; got != 1 {
		t.Errorf("refusals in back-off counted %v, want 1", got)
	}
	if got := after["skywatch_alarms_logins_refused_total{reason=wrong,via=mqtt}"]; got != 3 {
		t.Errorf("wrong passwords counted %v, want 3", got)
	}
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3") {
		t.Fatal("the real device from another address: refused")
	}
}

// One address guessing many user names is put in back-off as a whole.
func TestLoginBackoffPerSourceAddress(t *testing.T) {
	in := startIntake(t, authConfig(t, alarms.AuthConfig{AddressFailures: 3}), newStore(t))
	url := "tcp://" + in.BrokerAddr()
	for _, user := range []string{"d1", "d2", "nobody"} {
		if tryConnect(t, url, "127.0.0.3", user, "guess") {
			t.Fatalf("%s: guess accepted", user)
		}
	}
	if tryConnect(t, url, "127.0.0.3", "d3", "pw-d3") {
		t.Fatal("right password from a guessing address: accepted")
	}
	if !tryConnect(t, url, "127.0.0.1", "d1", "pw-d1") {
		t.Fatal("d1 from another address: refused")
	}
}

// Guesses from many addresses put the user name in back-off everywhere,
// except at the address it last logged in from: an attacker cannot keep
// the real device out.
func TestLoginBackoffPerUser(t *testing.T) {
	in := startIntake(t, authConfig(t, alarms.AuthConfig{UserFailures: 3}), newStore(t))
	url := "tcp://" + in.BrokerAddr()
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3") {
		t.Fatal("d3 before the attack: refused")
	}
	for _, from := range []string{"127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		if tryConnect(t, url, from, "d3", "guess") {
			t.Fatalf("guess from %s accepted", from)
		}
	}
	if tryConnect(t, url, "127.0.0.7", "d3", "pw-d3") {
		t.Fatal("d3 from a new address while its user name is in back-off: accepted")
	}
	if got := metricValues(t, in)["skywatch_alarms_logins_refused_total{reason=backoff_user,via=mqtt}"]; got != 1 {
		t.Errorf("refusals counted %v, want 1", got)
	}
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3") {
		t.Fatal("d3 from the address it logged in from: refused")
	}
}

// An unknown user name costs what a known one of the most common kind
// costs: a bcrypt check where most identities have password hashes, a
// plain compare (and no bcrypt) where most have plain passwords, as in the
// demo, so that the time of a refusal does not tell which names exist.
func TestLoginUnknownUserCostsTheSame(t *testing.T) {
	hashed := testConfig(t)
	for i := range hashed.Devices {
		hashed.Devices[i].Password, hashed.Devices[i].PasswordHash = "", hashD3
	}
	for _, c := range []struct {
		name       string
		cfg        alarms.Config
		known      string
		perRefusal float64
	}{
		{"most hashed", hashed, "d1", 1},
		{"most plain", testConfig(t), "d1", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := startIntake(t, c.cfg, newStore(t))
			url := "tcp://" + in.BrokerAddr()
			if tryConnect(t, url, "127.0.0.1", c.known, "guess") {
				t.Fatal("guess accepted")
			}
			if got := metricValues(t, in)["skywatch_alarms_login_bcrypt_total"]; got != c.perRefusal {
				t.Fatalf("bcrypt checks for a known name: %v, want %v", got, c.perRefusal)
			}
			if tryConnect(t, url, "127.0.0.1", "nobody", "guess") {
				t.Fatal("unknown name accepted")
			}
			if got := metricValues(t, in)["skywatch_alarms_login_bcrypt_total"]; got != 2*c.perRefusal {
				t.Fatalf("bcrypt checks after an unknown name: %v, want %v", got, 2*c.perRefusal)
			}
		})
	}
}

// However many wrong CONNECTs arrive at once, no more bcrypt checks run at
// once than mqtt.auth.bcrypt_workers.
func TestLoginBcryptBounded(t *testing.T) {
	// Cost 6 takes long enough (milliseconds) for unbounded checks to overlap.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-d3"), 6)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Devices[2].PasswordHash = string(hash)
	cfg.MQTT.Auth = alarms.AuthConfig{BcryptWorkers: 1, PairFailures: 1000, AddressFailures: 1000, UserFailures: 1000, AddressPending: 1000}
	in := startIntake(t, cfg, newStore(t))
	url := "tcp://" + in.BrokerAddr()
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if tryConnect(t, url, "127.0.0.1", "d3", "guess") {
				t.Errorf("guess %d accepted", i)
			}
		})
	}
	wg.Wait()
	if got := metricValues(t, in)["skywatch_alarms_login_bcrypt_total"]; got != 30 {
		t.Errorf("bcrypt checks: %v, want 30", got)
	}
	if peak := alarms.BcryptPeak(in); peak != 1 {
		t.Errorf("bcrypt checks at once: %d, want 1", peak)
	}
}

// The patrol page's logins and a unit's MQTT logins count against one
// limit: neither is a way around the other.
func TestLoginPatrolAndMQTTShareLimit(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-u9"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := authConfig(t, alarms.AuthConfig{PairFailures: 4})
	cfg.Units = append(cfg.Units, alarms.UnitConfig{ID: "u9", PasswordHash: string(hash)},
		alarms.UnitConfig{ID: "u8", PasswordHash: string(hash)})
	in := startIntake(t, cfg, newStore(t))
	url := "tcp://" + in.BrokerAddr()

	// Two guesses over MQTT, two on the patrol page: u9 is in back-off for
	// both.
	for range 2 {
		if tryConnect(t, url, "127.0.0.1", "u9", "guess") {
			t.Fatal("guess accepted")
		}
		if _, err := in.CheckUnit("u9", "guess", "127.0.0.1:40000"); !errors.Is(err, alarms.ErrBadCredentials) {
			t.Fatalf("patrol guess: %v", err)
		}
	}
	if _, err := in.CheckUnit("u9", "pw-u9", "127.0.0.1:40001"); !errors.Is(err, alarms.ErrLoginThrottled) {
		t.Errorf("patrol page after 4 guesses: %v, want ErrLoginThrottled", err)
	}
	if tryConnect(t, url, "127.0.0.1", "u9", "pw-u9") {
		t.Error("MQTT after 4 guesses: accepted")
	}
	if got := metricValues(t, in)["skywatch_alarms_logins_refused_total{reason=backoff_user_address,via=patrol}"]; got != 1 {
		t.Errorf("patrol refusals in back-off counted %v, want 1", got)
	}

	// And the other way round, for u8: patrol guesses first.
	for range 4 {
		if _, err := in.CheckUnit("u8", "guess", "127.0.0.1:40002"); !errors.Is(err, alarms.ErrBadCredentials) {
			t.Fatalf("patrol guess: %v", err)
		}
	}
	if tryConnect(t, url, "127.0.0.1", "u8", "pw-u8") {
		t.Error("MQTT after 4 patrol guesses: accepted")
	}
}

// A device with a token_sha256 logs in with its token, without a bcrypt
// check, and is refused with anything else.
func TestLoginToken(t *testing.T) {
	const token = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	sum := sha256.Sum256([]byte(token))
	cfg := testConfig(t)
	cfg.Devices = append(cfg.Devices, alarms.DeviceConfig{ID: "t1", TokenSHA256: hex.EncodeToString(sum[:])})
	in := startIntake(t, cfg, newStore(t))
	url := "tcp://" + in.BrokerAddr()
	if tryConnect(t, url, "127.0.0.1", "t1", token[:len(token)-1]) {
		t.Fatal("a wrong token: accepted")
	}
	if !tryConnect(t, url, "127.0.0.1", "t1", token) {
		t.Fatal("the token: refused")
	}
	if got := metricValues(t, in)["skywatch_alarms_login_bcrypt_total"]; got != 0 {
		t.Errorf("bcrypt checks for a token: %v, want 0", got)
	}
}

// Verified passwords survive a restart in mqtt.auth.cache_file, as keyed
// hashes: after the restart a device logs in without a bcrypt check, a
// wrong password still costs one and is refused, a changed hash in the
// config needs a new check, and the files hold no password and are
// readable by the owner only.
func TestLoginCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.MQTT.Auth.CacheFile = filepath.Join(dir, "auth.json")
	store := newStore(t)
	start := func(cfg alarms.Config) (*alarms.Intake, string) {
		in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = in.Close() })
		if err := in.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		return in, "tcp://" + in.BrokerAddr()
	}
	in, url := start(cfg)
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3") {
		t.Fatal("d3: refused")
	}
	_ = in.Close()

	in, url = start(cfg)
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3") {
		t.Fatal("d3 after the restart: refused")
	}
	m := metricValues(t, in)
	if m["skywatch_alarms_login_bcrypt_total"] != 0 || m["skywatch_alarms_login_cache_hits_total"] != 1 {
		t.Errorf("after the restart: %v bcrypt checks, %v cache hits; want 0 and 1",
			m["skywatch_alarms_login_bcrypt_total"], m["skywatch_alarms_login_cache_hits_total"])
	}
	if tryConnect(t, url, "127.0.0.1", "d3", "pw-d1") {
		t.Fatal("d3 with a wrong password after the restart: accepted")
	}
	if got := metricValues(t, in)["skywatch_alarms_login_bcrypt_total"]; got != 1 {
		t.Errorf("a wrong password cost %v bcrypt checks, want 1", got)
	}
	_ = in.Close()

	for _, name := range []string{"auth.json", "auth.json.key"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "pw-d3") {
			t.Errorf("%s holds the password", name)
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", name, st.Mode().Perm(), err)
		}
	}

	// A new hash of the same password in the config: checked again.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-d3"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Devices[2].PasswordHash = string(hash)
	in, url = start(cfg)
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3") {
		t.Fatal("d3 with its new hash: refused")
	}
	if got := metricValues(t, in)["skywatch_alarms_login_bcrypt_total"]; got != 1 {
		t.Errorf("a changed hash cost %v bcrypt checks, want 1", got)
	}
}

// Validate names the keys of wrong credentials and limits.
func TestAuthConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		mod  func(*alarms.Config)
		want string
	}{
		{func(c *alarms.Config) { c.Devices[0].TokenSHA256 = "abc" }, "devices[0].token_sha256: set together"},
		{func(c *alarms.Config) { c.Devices[0].Password, c.Devices[0].TokenSHA256 = "", "abc" }, "devices[0].token_sha256: must be 64 hex digits"},
		{func(c *alarms.Config) { c.MQTT.Auth.PairFailures = -1 }, "mqtt.auth.pair_failures: must be positive"},
		{func(c *alarms.Config) { c.MQTT.Auth.BcryptWorkers = -1 }, "mqtt.auth.bcrypt_workers: must be positive"},
		{func(c *alarms.Config) { c.MQTT.Auth.BaseDelay, c.MQTT.Auth.MaxDelay = time.Hour, time.Minute }, "mqtt.auth.max_delay"},
		{func(c *alarms.Config) { c.MQTT.Auth.CacheKey = "xyz" }, "SKYWATCH_MQTT_AUTH_KEY"},
	} {
		cfg := testConfig(t)
		tt.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
}

// Without a cache file (the Redis store has no default one), NewIntake
// says that every restart will check each hashed password again; with one
// it says nothing.
func TestLoginWarnsWithoutCacheFile(t *testing.T) {
	for _, file := range []string{"", filepath.Join(t.TempDir(), "auth.json")} {
		cfg := testConfig(t) // d3 has a password_hash
		cfg.MQTT.Auth.CacheFile = file
		var logs strings.Builder
		in, err := alarms.NewIntake(cfg, newStore(t), hardware.Decoders(), slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		_ = in.Close()
		if warned := strings.Contains(logs.String(), "no mqtt.auth.cache_file"); warned != (file == "") {
			t.Errorf("cache_file %q: warned %v: %s", file, warned, logs.String())
		}
	}
}

// A login refused because too many checks wait is answered "server
// unavailable" (MQTT 3.1.1 return code 3), not "not authorized": a device
// that gives up on a wrong password must try again later.
func TestLoginBusyIsServerUnavailable(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.Auth = alarms.AuthConfig{BcryptWorkers: 1, BcryptWait: time.Millisecond}
	in := startIntake(t, cfg, newStore(t))
	release := alarms.HoldBcryptWorkers(in)
	defer release()
	o := paho.NewClientOptions().AddBroker("tcp://" + in.BrokerAddr()).SetClientID("d3").
		SetUsername("d3").SetPassword("pw-d3").SetAutoReconnect(false).SetProtocolVersion(4)
	tok := paho.NewClient(o).Connect()
	if !tok.WaitTimeout(failAfter) {
		t.Fatal("connect: timeout")
	}
	if code := tok.(*paho.ConnectToken).ReturnCode(); code != 3 {
		t.Fatalf("CONNACK return code %d (%v), want 3 (server unavailable)", code, tok.Error())
	}
}
