package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The console account that the sim benchmarks give the Skywatch they
// start, and log in with.
const (
	benchUser     = "bench"
	benchPassword = "bench-pw"
)

// benchUsersYAML is the users: section of a benchmark's config: the bench
// admin, hashed at bcrypt's lowest cost (a throwaway account on loopback).
func benchUsersYAML() (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), bcrypt.MinCost)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("users:\n  - username: %s\n    role: admin\n    password_hash: %q\n", benchUser, hash), nil
}

// benchLogin logs client (which keeps cookies) in to the Skywatch at base
// as the bench admin and returns the session's CSRF token.
func benchLogin(ctx context.Context, client *http.Client, base string) (csrf string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"username": benchUser, "password": benchPassword})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("login: status %d", resp.StatusCode)
	}
	var me struct {
		CSRF string `json:"csrf"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	return me.CSRF, nil
}
