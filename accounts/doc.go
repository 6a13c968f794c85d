// Package accounts holds the operator console's accounts: the users from the
// config file and their roles, password checks, the audit log, each user's
// saved preferences and sessions, and the API tokens of programs (video
// walls, WHEP players), kept as their SHA-256 only.
//
// Two stores keep the audit log, the preferences, the sessions and the
// tokens made in the console: FileStore, files in a
// directory for a single node, and RedisStore, for several nodes sharing
// one Redis with the alarm store. Both have the same methods and pass the
// same tests; the HTTP side declares the interface it needs.
//
// The package imports no other Skywatch package.
package accounts
