package main

import (
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/accounts"
)

// demoConsolePassword is every demo operator's password.
const demoConsolePassword = "demo-console"

// demoUsers are the demo's operator accounts: one of each role, and one
// operator for each township to show area scope.
func demoUsers() ([]accounts.UserConfig, error) {
	// A low bcrypt cost: the demo starts in a moment and its password is
	// printed anyway.
	hash, err := bcrypt.GenerateFromPassword([]byte(demoConsolePassword), bcrypt.MinCost)
	if err != nil {
		return nil, fmt.Errorf("demo users: %w", err)
	}
	h := string(hash)
	return []accounts.UserConfig{
		{Username: "admin", Name: "System administrator", Role: accounts.RoleAdmin, PasswordHash: h},
		{Username: "duty", Name: "County duty officer", Role: accounts.RoleSupervisor, Area: "qingshan", PasswordHash: h},
		{Username: "dongcheng", Name: "Dongcheng operator", Role: accounts.RoleOperator, Area: "dongcheng", PasswordHash: h},
		{Username: "xicheng", Name: "Xicheng operator", Role: accounts.RoleOperator, Area: "xicheng", PasswordHash: h},
		{Username: "watch", Name: "County video watch", Role: accounts.RoleViewer, Area: "qingshan", PasswordHash: h},
	}, nil
}
