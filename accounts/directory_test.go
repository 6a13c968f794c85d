package accounts

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAuthenticate(t *testing.T) {
	users := []UserConfig{
		{Username: "Li.Wei", Name: "李伟", Role: RoleOperator, Area: "north", PasswordHash: bcryptHash(t, "pw-li"), Language: "zh-CN", TimeZone: "Asia/Shanghai"},
		{Username: "admin", Role: RoleAdmin, PasswordHash: argon2Hash("pw-admin")},
	}
	d, err := NewDirectory(users)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		username, password string
		want               string // user name; "" for ErrBadCredentials
	}{
		{"Li.Wei", "pw-li", "Li.Wei"},
		{"li.wei", "pw-li", "Li.Wei"},
		{"LI.WEI", "pw-li", "Li.Wei"},
		{"admin", "pw-admin", "admin"},
		{"Li.Wei", "pw-admin", ""},
		{"Li.Wei", "PW-LI", ""},
		{"Li.Wei", "", ""},
		{"admin", "pw-admin ", ""},
		{"nobody", "pw-li", ""},
		{"", "", ""},
		{"li.wei ", "pw-li", ""},
	}
	for _, tc := range tests {
		u, err := d.Authenticate(tc.username, tc.password)
		if tc.want == "" {
			if !errors.Is(err, ErrBadCredentials) {
				t.Errorf("%q/%q: %v, %v; want ErrBadCredentials", tc.username, tc.password, u, err)
			}
			continue
		}
		if err != nil || u.Username != tc.want {
			t.Errorf("%q/%q: %+v, %v; want %s", tc.username, tc.password, u, err, tc.want)
		}
	}

	u, _ := d.Authenticate("li.wei", "pw-li")
	want := User{Username: "Li.Wei", Name: "李伟", Role: RoleOperator, Area: "north", Language: "zh-CN", TimeZone: "Asia/Shanghai",
		Fingerprint: fingerprint(users[0].PasswordHash, RoleOperator, "north")}
	if u != want {
		t.Errorf("user %+v, want %+v", u, want)
	}
	if u, ok := d.User("ADMIN"); !ok || u.Name != "admin" || u.Role != RoleAdmin {
		t.Errorf("User(ADMIN) = %+v, %v; want admin named admin", u, ok)
	}
	if _, ok := d.User("nobody"); ok {
		t.Error("User(nobody) found")
	}
	if ErrBadCredentials.Error() != "wrong user name or password" {
		t.Errorf("ErrBadCredentials says %q", ErrBadCredentials)
	}
}

// TestUnknownUserChecksAHash checks that an unknown user costs a hash check
// against a dummy of the same kind and cost as the users' hashes.
func TestUnknownUserChecksAHash(t *testing.T) {
	for name, hash := range map[string]string{
		"bcrypt":   bcryptHash(t, "pw"),
		"argon2id": argon2Hash("pw"),
	} {
		d, err := NewDirectory([]UserConfig{{Username: "u", Role: RoleViewer, PasswordHash: hash}})
		if err != nil {
			t.Fatal(err)
		}
		var checked []*passwordHash
		verify := d.verify
		d.verify = func(h *passwordHash, pw []byte) bool {
			checked = append(checked, h)
			return verify(h, pw)
		}
		if _, err := d.Authenticate("someone", "pw"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: unknown user: %v", name, err)
		}
		if len(checked) != 1 || checked[0] != d.dummy {
			t.Fatalf("%s: unknown user checked %d hashes, want the dummy once", name, len(checked))
		}
		real, _ := parseHash(hash)
		dummy := checked[0]
		if real.bcrypt != nil {
			rc, _ := bcrypt.Cost(real.bcrypt)
			dc, err := bcrypt.Cost(dummy.bcrypt)
			if err != nil || dc != rc {
				t.Errorf("%s: dummy cost %d (%v), want %d", name, dc, err, rc)
			}
		} else if dummy.bcrypt != nil || dummy.time != real.time || dummy.memory != real.memory ||
			dummy.threads != real.threads || len(dummy.key) != len(real.key) || string(dummy.salt) == string(real.salt) {
			t.Errorf("%s: dummy %+v, want the parameters of %+v with another salt", name, dummy, real)
		}

		checked = nil
		if _, err := d.Authenticate("u", "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: wrong password: %v", name, err)
		}
		if len(checked) != 1 || checked[0] == d.dummy {
			t.Errorf("%s: a known user checked %d hashes, want its own once", name, len(checked))
		}
	}

	d, err := NewDirectory(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate("u", "pw"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("no users: %v", err)
	}
	if d.dummy == nil || d.dummy.bcrypt == nil {
		t.Error("no users: no bcrypt dummy")
	}
}

func TestNewDirectoryValidates(t *testing.T) {
	_, err := NewDirectory([]UserConfig{{Username: "a b", Role: RoleViewer, PasswordHash: refBcrypt}})
	if err == nil || !strings.Contains(err.Error(), "users[0].username") {
		t.Errorf("err = %v, want users[0].username", err)
	}
	// Areas are the caller's to check.
	if _, err := NewDirectory([]UserConfig{{Username: "a", Role: RoleViewer, Area: "north", PasswordHash: refBcrypt}}); err != nil {
		t.Errorf("user with an area: %v", err)
	}
}

func TestAuthenticateConcurrent(t *testing.T) {
	d, err := NewDirectory([]UserConfig{{Username: "u", Role: RoleViewer, PasswordHash: argon2Hash("pw")}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			pw := "pw"
			if i%2 == 1 {
				pw = "no"
			}
			_, err := d.Authenticate("u", pw)
			if (i%2 == 0) != (err == nil) {
				errs <- errors.New("wrong answer")
				return
			}
			errs <- nil
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestFingerprint: a user's fingerprint changes with the password hash,
// the role or the area, and with nothing else; it does not hold the hash.
func TestFingerprint(t *testing.T) {
	h1, h2 := bcryptHash(t, "pw"), bcryptHash(t, "pw")
	base := UserConfig{Username: "duty", Name: "Duty", Role: RoleOperator, Area: "north", PasswordHash: h1}
	fp := func(uc UserConfig) string {
		t.Helper()
		d, err := NewDirectory([]UserConfig{uc})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := d.User("duty")
		return u.Fingerprint
	}
	was := fp(base)
	if was == "" || strings.Contains(h1, was) || strings.Contains(was, h1[7:20]) {
		t.Fatalf("fingerprint %q", was)
	}
	same := base
	same.Name, same.Language, same.TimeZone = "Someone else", "en", "Asia/Shanghai"
	if fp(same) != was {
		t.Error("the fingerprint changed with the name, language or time zone")
	}
	for what, change := range map[string]func(*UserConfig){
		"hash": func(u *UserConfig) { u.PasswordHash = h2 },
		"role": func(u *UserConfig) { u.Role = RoleSupervisor },
		"area": func(u *UserConfig) { u.Area = "south" },
	} {
		uc := base
		change(&uc)
		if fp(uc) == was {
			t.Errorf("the fingerprint did not change with the %s", what)
		}
	}
}
