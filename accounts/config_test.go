package accounts

import (
	"strings"
	"testing"
	"time"
)

func TestValidateUsers(t *testing.T) {
	h := refBcrypt
	areas := func(a string) bool { return a == "north" || a == "north/1" }
	tests := []struct {
		name  string
		users []UserConfig
		areas func(string) bool
		want  []string // each a whole line of the error; none for valid
	}{
		{"valid", []UserConfig{
			{Username: "li.wei@county-1_a", Name: "李伟", Role: RoleOperator, Area: "north/1", PasswordHash: h, Language: "zh-CN", TimeZone: "Asia/Shanghai"},
			{Username: "admin", Role: RoleAdmin, PasswordHash: argon2Hash("x"), Language: "en", TimeZone: "UTC"},
			{Username: strings.Repeat("a", 64), Role: RoleViewer, PasswordHash: h},
		}, areas, nil},
		{"no users", nil, nil, nil},
		{"username", []UserConfig{
			{Role: RoleViewer, PasswordHash: h},
			{Username: "a b", Role: RoleViewer, PasswordHash: h},
			{Username: "李", Role: RoleViewer, PasswordHash: h},
			{Username: strings.Repeat("a", 65), Role: RoleViewer, PasswordHash: h},
			{Username: "Admin", Role: RoleViewer, PasswordHash: h},
			{Username: "admin", Role: RoleViewer, PasswordHash: h},
		}, nil, []string{
			"users[0].username: required",
			`users[1].username: "a b": must be 1 to 64 characters of A-Z a-z 0-9 . _ @ -`,
			`users[2].username: "李": must be 1 to 64 characters of A-Z a-z 0-9 . _ @ -`,
			`users[3].username: "` + strings.Repeat("a", 65) + `": must be 1 to 64 characters of A-Z a-z 0-9 . _ @ -`,
			`users[5].username: duplicate user name "admin" (also users[4], names are compared regardless of case)`,
		}},
		{"role", []UserConfig{
			{Username: "a", PasswordHash: h},
			{Username: "b", Role: "Admin", PasswordHash: h},
		}, nil, []string{
			`users[0].role: "": must be viewer, operator, supervisor or admin`,
			`users[1].role: "Admin": must be viewer, operator, supervisor or admin`,
		}},
		{"area", []UserConfig{
			{Username: "a", Role: RoleViewer, Area: "south", PasswordHash: h},
			{Username: "b", Role: RoleViewer, Area: "north", PasswordHash: h},
		}, areas, []string{
			`users[0].area: unknown area "south"`,
		}},
		{"area without areas", []UserConfig{
			{Username: "a", Role: RoleViewer, Area: "north", PasswordHash: h},
		}, nil, []string{
			`users[0].area: unknown area "north": no areas are configured`,
		}},
		{"password hash", []UserConfig{
			{Username: "a", Role: RoleViewer},
			{Username: "b", Role: RoleViewer, PasswordHash: "secret"},
			{Username: "c", Role: RoleViewer, PasswordHash: "$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$c2hvcnRzaG9ydHNob3J0c2g"},
		}, nil, []string{
			"users[0].password_hash: required (make one with `skywatch passwd`)",
			"users[1].password_hash: not a bcrypt or argon2id hash",
			"users[2].password_hash: argon2id: t must be 1 to 32",
		}},
		{"language and time zone", []UserConfig{
			{Username: "a", Role: RoleViewer, PasswordHash: h, Language: "zh", TimeZone: "Asia/Beijing"},
			{Username: "b", Role: RoleViewer, PasswordHash: h, Language: "EN", TimeZone: "Local"},
		}, nil, []string{
			`users[0].language: "zh": must be zh-CN or en`,
			`users[0].time_zone: "Asia/Beijing": not a known IANA time zone name (such as Asia/Shanghai)`,
			`users[1].language: "EN": must be zh-CN or en`,
			`users[1].time_zone: "Local": not an IANA time zone name (such as Asia/Shanghai)`,
		}},
		{"session idle", []UserConfig{
			{Username: "a", Role: RoleViewer, PasswordHash: h, SessionIdle: 30 * time.Second},
			{Username: "b", Role: RoleViewer, PasswordHash: h, SessionIdle: 12 * time.Hour},
		}, nil, []string{
			"users[0].session_idle: 30s: must be at least a minute (or 0 for the server's)",
		}},
		{"name", []UserConfig{
			{Username: "a", Role: RoleViewer, PasswordHash: h, Name: strings.Repeat("名", 101)},
			{Username: "b", Role: RoleViewer, PasswordHash: h, Name: "a\nb"},
			{Username: "c", Role: RoleViewer, PasswordHash: h, Name: strings.Repeat("名", 100)},
		}, nil, []string{
			"users[0].name: longer than 100 characters",
			"users[1].name: must not contain control characters",
		}},
	}
	for _, tc := range tests {
		err := ValidateUsers(tc.users, tc.areas)
		var got []string
		if err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}
