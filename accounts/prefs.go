package accounts

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// MaxPrefsSize is the largest preferences object a user may store, in
// bytes.
const MaxPrefsSize = 16 << 10

// Errors of SetPrefs.
var (
	ErrPrefsTooLarge  = errors.New("preferences larger than 16 KB")
	ErrPrefsNotObject = errors.New("preferences must be a JSON object")
)

// ErrClosed is returned by the operations of a closed store.
var ErrClosed = errors.New("store is closed")

// prefsKey is the key of a user's preferences: user names do not differ by
// case alone.
func prefsKey(username string) (string, error) {
	if username == "" {
		return "", errors.New("empty user name")
	}
	return strings.ToLower(username), nil
}

// checkPrefs returns prefs compacted, or why they cannot be stored.
func checkPrefs(prefs json.RawMessage) (json.RawMessage, error) {
	if len(prefs) > MaxPrefsSize {
		return nil, ErrPrefsTooLarge
	}
	var b bytes.Buffer
	if err := json.Compact(&b, prefs); err != nil || b.Len() == 0 || b.Bytes()[0] != '{' {
		return nil, ErrPrefsNotObject
	}
	return b.Bytes(), nil
}
