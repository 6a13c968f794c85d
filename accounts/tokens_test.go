package accounts

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewTokenShapeAndHash(t *testing.T) {
	tok, sum := NewToken()
	if !strings.HasPrefix(tok, TokenPrefix) || !LooksLikeToken(tok) {
		t.Fatalf("token %q has not a token's shape", tok)
	}
	// 32 random bytes in base64url: 256 bits.
	if n := len(tok) - len(TokenPrefix); n != 43 {
		t.Errorf("token body is %d characters, want 43 (256 bits)", n)
	}
	if sum != TokenSum(tok) || len(sum) != 64 || !validTokenSum(sum) {
		t.Errorf("sum %q is not the token's hex SHA-256", sum)
	}
	// Known answer: SHA-256 of the text, as sha256sum prints it.
	if got := TokenSum("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("TokenSum(abc) = %s", got)
	}
	tok2, _ := NewToken()
	if tok2 == tok {
		t.Error("two tokens are equal")
	}
	for _, bad := range []string{"", TokenPrefix, "swt_short", tok[:len(tok)-1], strings.Replace(tok, TokenPrefix, "xyz_", 1),
		tok[:len(tok)-1] + "!", strings.Repeat("a", len(tok))} {
		if LooksLikeToken(bad) {
			t.Errorf("LooksLikeToken(%q) = true", bad)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expires time.Time
		want    bool
	}{
		{time.Time{}, false},
		{now.Add(time.Second), false},
		{now, true},
		{now.Add(-time.Second), true},
	} {
		if got := (Token{Expires: tc.expires}).Expired(now); got != tc.want {
			t.Errorf("expires %v: Expired = %v, want %v", tc.expires, got, tc.want)
		}
	}
}

func TestValidateTokens(t *testing.T) {
	tok, sum := NewToken()
	good := TokenConfig{Name: "wall-1", Role: RoleViewer, Area: "t1", Cameras: []string{"gate"}, TokenSHA256: sum}
	areas := func(a string) bool { return a == "t1" }
	cams := func(c string) bool { return c == "gate" || c == "yard" }
	if err := ValidateTokens([]TokenConfig{good}, areas, cams); err != nil {
		t.Fatalf("good token: %v", err)
	}
	upper := good
	upper.TokenSHA256 = strings.ToUpper(sum)
	if err := ValidateTokens([]TokenConfig{upper}, areas, cams); err != nil {
		t.Errorf("upper-case hex: %v", err)
	}
	if got := upper.Token().SHA256; got != sum {
		t.Errorf("Token() keeps the sum as %q, want lower case", got)
	}
	mod := func(f func(*TokenConfig)) TokenConfig {
		c := good
		c.Cameras = append([]string(nil), good.Cameras...)
		f(&c)
		return c
	}
	tests := []struct {
		name   string
		tokens []TokenConfig
		want   string
	}{
		{"no name", []TokenConfig{mod(func(c *TokenConfig) { c.Name = "" })}, "tokens[0].name: required"},
		{"bad name", []TokenConfig{mod(func(c *TokenConfig) { c.Name = "wall 1" })}, "tokens[0].name: \"wall 1\""},
		{"bad role", []TokenConfig{mod(func(c *TokenConfig) { c.Role = "root" })}, "tokens[0].role: \"root\""},
		{"unknown area", []TokenConfig{mod(func(c *TokenConfig) { c.Area = "t9" })}, "tokens[0].area: unknown area \"t9\""},
		{"unknown camera", []TokenConfig{mod(func(c *TokenConfig) { c.Cameras = []string{"gate", "moon"} })}, "tokens[0].cameras[1]: unknown camera \"moon\""},
		{"camera twice", []TokenConfig{mod(func(c *TokenConfig) { c.Cameras = []string{"gate", "gate"} })}, "tokens[0].cameras[1]: \"gate\" listed twice"},
		{"no sum", []TokenConfig{mod(func(c *TokenConfig) { c.TokenSHA256 = "" })}, "tokens[0].token_sha256: required"},
		{"the token itself", []TokenConfig{mod(func(c *TokenConfig) { c.TokenSHA256 = tok })}, "tokens[0].token_sha256: this is a token"},
		{"short sum", []TokenConfig{mod(func(c *TokenConfig) { c.TokenSHA256 = sum[:63] })}, "tokens[0].token_sha256: must be 64 hex digits"},
		{"duplicate name", []TokenConfig{good, mod(func(c *TokenConfig) { c.Name = "WALL-1"; _, c.TokenSHA256 = NewToken() })}, "tokens[1].name: duplicate token name"},
		{"same token twice", []TokenConfig{good, mod(func(c *TokenConfig) { c.Name = "wall-2" })}, "tokens[1].token_sha256: the same token as tokens[0]"},
		{"control in description", []TokenConfig{mod(func(c *TokenConfig) { c.Description = "a\x1bb" })}, "tokens[0].description: must not contain control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTokens(tt.tokens, areas, cams)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if err := ValidateTokens([]TokenConfig{good}, nil, nil); err == nil || !strings.Contains(err.Error(), "no areas are configured") {
		t.Errorf("an area without areas configured: %v", err)
	}
}

// testTokens: a store keeps tokens hashed across a reopen, refuses a name
// twice, counts uses without bringing back a deleted token.
func testTokens(t *testing.T, open func() store) {
	ctx := t.Context()
	s := openT(t, open)
	if got, err := s.Tokens(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	_, sumA := NewToken()
	_, sumB := NewToken()
	a := Token{Name: "Wall-1", Role: RoleViewer, Area: "t1", Cameras: []string{"gate"}, Expires: at.Add(24 * time.Hour),
		Description: "hall 2 decoder", SHA256: sumA, Created: at, CreatedBy: "admin"}
	b := Token{Name: "nvr", Role: RoleOperator, SHA256: sumB, Created: at, CreatedBy: "admin"}
	for _, x := range []Token{b, a} {
		if err := s.SaveToken(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	dup := b
	dup.Name = "NVR"
	if err := s.TouchToken(ctx, "nvr", at, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveToken(ctx, dup); !errors.Is(err, ErrTokenExists) {
		t.Errorf("a second token named NVR: %v, want ErrTokenExists", err)
	}
	if got, _ := s.Tokens(ctx); len(got) != 2 || got[0].Name != "nvr" || got[0].Uses != 3 {
		t.Errorf("a refused second nvr changed the first: %+v", got)
	}
	if err := s.SaveToken(ctx, Token{Name: "x", Role: RoleViewer, SHA256: "not-a-sum"}); err == nil {
		t.Error("a token without a SHA-256 was saved")
	}
	if err := s.TouchToken(ctx, "wall-1", at.Add(time.Hour), 5); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchToken(ctx, "wall-1", at.Add(time.Minute), 2); err != nil { // an older use from another node
		t.Fatal(err)
	}
	if ok, err := s.DeleteToken(ctx, "NVR"); err != nil || !ok {
		t.Fatalf("delete nvr: %v %v", ok, err)
	}
	if ok, err := s.DeleteToken(ctx, "nvr"); err != nil || ok {
		t.Errorf("delete nvr again: %v %v", ok, err)
	}
	// A use written after the revocation does not bring it back.
	if err := s.TouchToken(ctx, "nvr", at.Add(time.Hour), 1); err != nil {
		t.Fatal(err)
	}
	// What a restart finds.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, open)
	got, err := s2.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("after reopening: %+v", got)
	}
	g := got[0]
	if g.Name != "Wall-1" || g.Role != RoleViewer || g.Area != "t1" || len(g.Cameras) != 1 || g.Cameras[0] != "gate" ||
		!g.Expires.Equal(a.Expires) || g.Description != a.Description || g.SHA256 != sumA || !g.Created.Equal(at) ||
		g.CreatedBy != "admin" || g.Uses != 7 || !g.LastUsed.Equal(at.Add(time.Hour)) || g.Configured {
		t.Errorf("after reopening: %+v", g)
	}
	// A new token of a revoked one's name starts its count afresh.
	if err := s2.SaveToken(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, _ = s2.Tokens(ctx)
	if len(got) != 2 || got[0].Name != "nvr" || got[0].Uses != 0 || !got[0].LastUsed.IsZero() {
		t.Errorf("a new nvr: %+v", got)
	}
}
