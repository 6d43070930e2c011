// Package password hashes and verifies the pool's passwords: users'
// passwords (stored by package store) and the admin password (held by
// package stratum). New hashes are argon2id PHC strings
// ($argon2id$v=19$m=…,t=…,p=…$salt$key); bcoin-stratum's unsalted
// $sha256d$ hashes, imported from its users.json, still verify and ask to
// be replaced.
//
// Hasher is the interface every user of a hasher takes: Argon2id does the
// work in the calling goroutine; internal/pwworker's Client does the same
// work in a low-priority child process, with the same answers.
//
// The package owns no storage and no policy about users: it must not import
// the store, the database driver or the stratum protocol, so that every
// consumer (store, stratum, pwworker, cmd/stratumd) can use it without them.
// Errors the input causes wrap ErrInvalid.
package password
