package alarms

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Defaults of AuthConfig.
const (
	DefaultPairFailures    = 5
	DefaultAddressFailures = 20
	DefaultUserFailures    = 20
	DefaultBaseDelay       = time.Second
	DefaultMaxDelay        = 15 * time.Minute
	DefaultUserMaxDelay    = 30 * time.Second
	DefaultForgetAfter     = 15 * time.Minute
	DefaultMaxTracked      = 10000
	DefaultBcryptQueue     = 1024
	DefaultBcryptWait      = 10 * time.Second
	DefaultAddressPending  = 16
)

// DefaultBcryptWorkers is half the CPUs, at least one: bcrypt checks never
// take every core, so that the console keeps one during a restart storm.
func DefaultBcryptWorkers() int { return max(1, runtime.NumCPU()/2) }

// AuthConfig bounds the password checks of devices and units, at the
// embedded broker and at the patrol page alike (the key mqtt.auth). Wrong
// passwords are counted per user name and address, per address and per
// user name; past a number of free failures, that key is in back-off: its
// attempts are refused at once, without a bcrypt check, for a delay that
// starts at BaseDelay and doubles with every further failure. Zero values
// take the defaults.
type AuthConfig struct {
	// PairFailures is how many wrong passwords one user name may send from
	// one address before back-off. It defaults to 5.
	PairFailures int `yaml:"pair_failures"`
	// AddressFailures is how many wrong passwords one address may send,
	// for any user names, before back-off. It defaults to 20.
	AddressFailures int `yaml:"address_failures"`
	// UserFailures is how many wrong passwords one user name may receive,
	// from any addresses, before back-off. It defaults to 20.
	UserFailures int `yaml:"user_failures"`
	// BaseDelay is the first back-off. It defaults to 1 s.
	BaseDelay time.Duration `yaml:"base_delay"`
	// MaxDelay caps the back-off of an address and of a user name at one
	// address. It defaults to 15 minutes.
	MaxDelay time.Duration `yaml:"max_delay"`
	// UserMaxDelay caps the back-off of a user name from every address,
	// short so that an attacker cannot keep the real device out for long.
	// It defaults to 30 s.
	UserMaxDelay time.Duration `yaml:"user_max_delay"`
	// ForgetAfter is how long after its back-off ends (or its last failure)
	// a key's failures are forgotten. It defaults to 15 minutes.
	ForgetAfter time.Duration `yaml:"forget_after"`
	// MaxTracked bounds the user names and the addresses whose failures
	// are counted (each). It defaults to 10,000.
	MaxTracked int `yaml:"max_tracked"`
	// BcryptWorkers bounds the bcrypt checks that run at once. It defaults
	// to half the CPUs, at least 1.
	BcryptWorkers int `yaml:"bcrypt_workers"`
	// BcryptQueue bounds the checks waiting for a worker; more are refused
	// at once (the device retries). It defaults to 1,024.
	BcryptQueue int `yaml:"bcrypt_queue"`
	// AddressPending bounds the bcrypt checks of one address in progress
	// at once (waiting or running): failures count only once checked, so
	// without it one address could fill the queue before its first
	// failure. Cached passwords and tokens do not count. It defaults to 16.
	AddressPending int `yaml:"address_pending"`
	// BcryptWait bounds how long a check waits for a worker; then it is
	// refused (the device retries), rather than answered after the device
	// gave up waiting. It defaults to 10 s.
	BcryptWait time.Duration `yaml:"bcrypt_wait"`
	// CacheFile keeps the credentials verified with bcrypt across restarts,
	// as HMAC-SHA256 under the key in CacheKeyFile (never a password), so
	// that a restart costs no bcrypt check for devices that logged in
	// before. Empty keeps them in memory only.
	CacheFile string `yaml:"cache_file"`
	// CacheKeyFile holds the cache's secret key (created, mode 0600, when
	// missing). It defaults to CacheFile with ".key" appended; the
	// environment variable SKYWATCH_MQTT_AUTH_KEY (64 hex digits)
	// overrides it.
	CacheKeyFile string `yaml:"cache_key_file"`
	// CacheKey is the secret key itself (from the environment), or empty.
	CacheKey string `yaml:"-"`
}

func (c *AuthConfig) setDefaults() {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.PairFailures, DefaultPairFailures)
	setInt(&c.AddressFailures, DefaultAddressFailures)
	setInt(&c.UserFailures, DefaultUserFailures)
	setDur(&c.BaseDelay, DefaultBaseDelay)
	setDur(&c.MaxDelay, DefaultMaxDelay)
	setDur(&c.UserMaxDelay, DefaultUserMaxDelay)
	setDur(&c.ForgetAfter, DefaultForgetAfter)
	setInt(&c.MaxTracked, DefaultMaxTracked)
	setInt(&c.BcryptWorkers, DefaultBcryptWorkers())
	setInt(&c.BcryptQueue, DefaultBcryptQueue)
	setDur(&c.BcryptWait, DefaultBcryptWait)
	setInt(&c.AddressPending, DefaultAddressPending)
	if c.CacheFile != "" && c.CacheKeyFile == "" {
		c.CacheKeyFile = c.CacheFile + ".key"
	}
}

func (c *AuthConfig) validate() error {
	var errs []error
	positive := func(key string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("mqtt.auth.%s: must be positive", key))
		}
	}
	positive("pair_failures", c.PairFailures > 0)
	positive("address_failures", c.AddressFailures > 0)
	positive("user_failures", c.UserFailures > 0)
	positive("base_delay", c.BaseDelay > 0)
	positive("max_delay", c.MaxDelay > 0)
	positive("user_max_delay", c.UserMaxDelay > 0)
	positive("forget_after", c.ForgetAfter > 0)
	positive("max_tracked", c.MaxTracked > 0)
	positive("bcrypt_workers", c.BcryptWorkers > 0)
	positive("bcrypt_queue", c.BcryptQueue > 0)
	positive("bcrypt_wait", c.BcryptWait > 0)
	positive("address_pending", c.AddressPending > 0)
	if c.MaxDelay > 0 && c.MaxDelay < c.BaseDelay {
		errs = append(errs, errors.New("mqtt.auth.max_delay: must not be shorter than base_delay"))
	}
	if c.UserMaxDelay > 0 && c.UserMaxDelay < c.BaseDelay {
		errs = append(errs, errors.New("mqtt.auth.user_max_delay: must not be shorter than base_delay"))
	}
	if c.CacheKey != "" && !validKeyHex(c.CacheKey) {
		errs = append(errs, errors.New("SKYWATCH_MQTT_AUTH_KEY: must be 64 hex digits"))
	}
	return errors.Join(errs...)
}
