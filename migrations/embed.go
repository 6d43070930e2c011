package migrations

import "embed"

// FS holds every *.sql migration of this directory. It is read-only.
//
//go:embed *.sql
var FS embed.FS
