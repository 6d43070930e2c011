// Package migrations holds the goose SQL migrations of the pool's PostgreSQL
// schema, embedded so that both binaries carry them. Files are named
// NNNNN_name.sql (zero-padded) and each has an Up and a Down section.
//
// Apply them with `stratumd migrate up`; payout refuses to run while any are
// pending. Migrations are never applied implicitly at boot.
package migrations

import "embed"

// FS holds every *.sql migration of this directory. It is read-only.
//
//go:embed *.sql
var FS embed.FS
