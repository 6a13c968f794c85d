package main

import (
	"fmt"
	"time"

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
		{Username: "admin", Name: "系统管理员", Role: accounts.RoleAdmin, PasswordHash: h},
		{Username: "duty", Name: "县值班长", Role: accounts.RoleSupervisor, Area: demoCountyID, PasswordHash: h,
			// The duty console stays logged in through a quiet night.
			SessionIdle: 12 * time.Hour},
		{Username: "dongcheng", Name: "东城镇值班员", Role: accounts.RoleOperator, Area: "dongcheng", PasswordHash: h},
		{Username: "xicheng", Name: "西城镇值班员", Role: accounts.RoleOperator, Area: "xicheng", PasswordHash: h},
		{Username: "watch", Name: "县视频巡查", Role: accounts.RoleViewer, Area: demoCountyID, PasswordHash: h},
	}, nil
}
