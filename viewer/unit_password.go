package viewer

import (
	"crypto/subtle"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/alarms"
)

// dummyHash is the bcrypt hash (cost 10) of a password no unit has: an
// unknown user name is checked against it, so that a refusal takes as long
// whether the user exists or not.
const dummyHash = "$2a$10$T80HCw9e4s3OtfgG.e1rKOFmue5UH32h3tO2OWexywXzn/Xh99KiG"

// UnitPasswordCheck returns a Deps.CheckUnit over the alarm config's
// units: the user name (the unit's ID when empty) with its bcrypt
// password_hash, or its plain demo password.
//
// It belongs in alarms (the intake checks the same credentials at its
// broker, with a cache); until alarms exports such a check, cmd can use
// this one.
func UnitPasswordCheck(units []alarms.UnitConfig) func(username, password string) (string, bool) {
	type cred struct {
		id, hash, plain string
	}
	byUser := make(map[string]cred, len(units))
	for _, u := range units {
		user := u.Username
		if user == "" {
			user = u.ID
		}
		byUser[user] = cred{id: u.ID, hash: u.PasswordHash, plain: u.Password}
	}
	return func(username, password string) (string, bool) {
		c, ok := byUser[username]
		switch {
		case !ok || c.hash == "" && c.plain == "":
			_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
			return "", false
		case c.hash != "":
			if bcrypt.CompareHashAndPassword([]byte(c.hash), []byte(password)) != nil {
				return "", false
			}
		case subtle.ConstantTimeCompare([]byte(c.plain), []byte(password)) != 1:
			return "", false
		}
		return c.id, true
	}
}
