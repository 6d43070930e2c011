// Package admission is the stratum server's admission and abuse control:
// one clock-injected component that the accept loop and the sessions ask
// questions and tell what happened. It owns
//
//   - the ban list: bans for malformed lines (Malformed) and for whatever
//     else a session decides (Ban), with their expiry;
//   - per-address connections: the open-connection cap and the
//     connection-rate token bucket, both answered at accept (Admit,
//     Release), and the refusal counters and log summary;
//   - the authorization memo: successes cached for AuthCacheTTL, wrong
//     (user, password) pairs for AuthFailTTL, and the per-address limit of
//     AuthFailuresPerIP failed password checks per AuthFailWindow
//     (AuthShortcut, AuthSucceeded, AuthFailed);
//   - the admin-call limits: failed mining.authorize_admin per address and
//     overall, mining.add_user overall (AdminAllowed, AdminFailed,
//     AddUserAllowed);
//   - the argon2 slots that bound concurrent password hashing
//     (AcquireArgon, ReleaseArgon).
//
// Every time-based rule runs on Config.Now, so tests drive it with a fake
// clock; only the refusal summary's once-a-minute log line waits on a
// runtime timer (testing/synctest drives that). The counters underneath are
// two shared types: a fixed window (opened by the first event after the
// last one ended, so an ended window and a forgotten one answer alike) and a
// token bucket (the zero value is full). Everything known about one address
// is one record in one table under one mutex, forgotten as soon as it could
// no longer change an answer: at the address's last close, or in a sweep
// each time the table has doubled. The table has no other bound: records
// outlive their connections only while a ban, a malformed-line count, a
// failed-check window or a connection-rate deficit is live, and failed
// password checks are themselves bounded by the argon2 slots. The two
// authorization caches (keyed by user and password, not address) hold at
// most AuthCacheMax entries each.
//
// The package knows nothing of sessions, the protocol, users or the store:
// its code imports only the standard library and must not import
// internal/stratum or any other package of this module (its tests use
// internal/testutil). What it learns
// arrives as addresses (strings the caller derives from the connection),
// AuthKeys and calls; what it answers is booleans, Reasons and
// AuthVerdicts. Limits change at run time through SetLimits (SIGHUP).
//
// The refusal log keeps connection floods cheap to log: the first refusal
// of a period is logged at once, later ones are counted per reason and
// address (at most 1,024 addresses one by one) and summarized in one line
// when the period ends, RefusalLogPeriod later, or at FlushRefusals.
package admission
