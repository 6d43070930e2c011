// Package pgtest gives tests a real PostgreSQL: a fresh database per test,
// cloned from a migrated template database, and, for tests that stop and
// start the server, a private cluster of their own.
//
// The server comes from DATABASE_URL when it is set, otherwise from the
// project's scripts/pg.sh, which starts (creating on first use) the private
// cluster in .pg/ from the installed PostgreSQL server binaries. Tests that
// need PostgreSQL fail, never skip, when none can be had: a missing server is
// a broken set-up, not a reason to pass.
//
// By file:
//
//   - pgtest.go: ServerURL, the shared server; NewDatabase, a migrated
//     database per test, cloned from a template named after a hash of the
//     migrations (so a changed migration gets a new template);
//     NewEmptyDatabase; NewStore, a *store.Store on a fresh database, with
//     the cheap TestArgon2Params.
//   - cluster.go: StartCluster and Cluster, a server of one test's own that
//     the test stops and starts (the store's and the chaos suite's
//     PostgreSQL outages), run as an unprivileged user when the test runs as
//     root; BinDir.
//
// The schema comes from the migrations through store.NewMigrator, never
// from DDL of this package: its own SQL only manages databases (creating
// them from the template, dropping them, and an advisory lock while the
// template is built). It is for tests only, and it sits below the packages
// whose tests use it: apart from internal/store, internal/password and the
// migrations it must not import them (internal/stratum, internal/httpapi,
// internal/payout), since an internal test of a package it imported would
// be an import cycle. That is why the store's tests are in the external
// test package store_test.
package pgtest
