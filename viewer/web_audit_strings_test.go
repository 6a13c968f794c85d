package viewer

import (
	"strings"
	"testing"

	"github.com/skywatch/skywatch/accounts"
)

// TestPageTranslatesAuditActions: every action the audit log records has
// a Chinese and an English name in the console, and so has the player's
// refusal past the video session cap.
func TestPageTranslatesAuditActions(t *testing.T) {
	have := pageStrings(t)
	want := []string{"player.tooMany"}
	for _, a := range []string{accounts.AuditLogin, accounts.AuditLoginFailed, accounts.AuditLoginLocked, accounts.AuditLogout,
		accounts.AuditSessionExpired, accounts.AuditSessionRevoked, accounts.AuditSessionsEnded, accounts.AuditLoginUnlocked,
		accounts.AuditSummary, accounts.AuditWatchStart, accounts.AuditWatch, accounts.AuditIncidentAction, accounts.AuditDenied,
		accounts.AuditCSRFRefused, "audit_export", accounts.AuditTokenCreated, accounts.AuditTokenRevoked, accounts.AuditTokenExpired,
		accounts.AuditTokenUsed, accounts.AuditTokenRefused, accounts.AuditConfigReload} {
		want = append(want, "audit.a."+a)
	}
	for _, key := range want {
		for _, lang := range []string{"zh-CN", "en"} {
			if !have[lang][key] {
				t.Errorf("the page has no %s string %q", lang, key)
			}
		}
	}
}

// TestPageTokenStringsInBothLanguages: the API token page has every one of
// its strings in Chinese and in English, and its tab's name.
func TestPageTokenStringsInBothLanguages(t *testing.T) {
	have := pageStrings(t)
	n := 0
	for _, pair := range [][2]string{{"zh-CN", "en"}, {"en", "zh-CN"}} {
		for key := range have[pair[0]] {
			if !strings.HasPrefix(key, "tokens.") && key != "tab.tokens" {
				continue
			}
			n++
			if !have[pair[1]][key] {
				t.Errorf("the page has %s string %q but no %s one", pair[0], key, pair[1])
			}
		}
	}
	if n < 40 {
		t.Errorf("read %d token strings: the token page lost its strings", n)
	}
}
