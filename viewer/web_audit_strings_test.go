package viewer

import (
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
		accounts.AuditCSRFRefused, "audit_export"} {
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
