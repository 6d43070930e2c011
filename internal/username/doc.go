// Package username holds the rule a pool user's name follows: 1 to MaxLen
// bytes of valid UTF-8 without spaces, control characters or dots (a dot
// separates user from worker in stratum's "user.worker"). The schema's check
// on users.name says the same; every place that takes a name from outside
// (mining.authorize, mining.add_user, the HTTP API, users.json imports,
// share records) asks Valid before anything is stored or looked up.
//
// The package owns only that rule. It must not import the store, the
// database driver or the stratum protocol, so that checking a name never
// pulls in PostgreSQL.
package username
