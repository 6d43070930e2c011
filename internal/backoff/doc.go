// Package backoff is the one schedule of the daemon's retry loops: wait
// Min, then twice the previous wait, never more than Max, and start over at
// Min after a success. Backoff is that schedule; Sleep waits one step of it
// unless a context ends first.
//
// Each loop keeps its own documented timings and its own way of waiting:
//
//	loop                                         Min     Max
//	rpcsource: node reconnect, ZMQ resubscribe   250 ms  2 s    (Config.BackoffMin, BackoffMax)
//	store: drainer retry while PostgreSQL fails  50 ms   5 s    (DrainerConfig.MaxBackoff)
//	stratum: found-block resubmission, per block 1 s     1 min  (ResubmitterConfig.MinBackoff, MaxBackoff)
//	stratum: share-dump retry, per block         1 s     1 min  (RecorderConfig.RetryMin)
//	stratum: template retry after an error       100 ms  10 s
//	stratum: accept retry (EMFILE, ECONNABORTED) 5 ms    1 s
//	pwworker: password worker restart            100 ms  30 s
//
// There is no jitter: each loop is one client of one node, one database or
// one child process, not a crowd that must not retry in step, and the
// timings above are documented and tested exactly.
//
// A Backoff keeps no clock. The resubmitter and the recorder set deadlines
// on their injected clocks from Next; the other loops wait with Sleep, on a
// real timer, which testing/synctest fakes.
//
// # Why not a library
//
// We write these few lines ourselves. cenkalti/backoff/v5's
// ExponentialBackOff gives the same schedule only when set up with
// Multiplier 2 and RandomizationFactor 0 (its constructor turns on ±50 %
// jitter, and a zero Multiplier silently makes every wait the first one);
// its Retry and Ticker wait on their own timers, while our loops also wait
// on other channels (a context, the spool's notifications, a Close) or
// schedule on an injected clock, so the schedule's ten lines are all we
// would use of it. sethvargo/go-retry (in our module graph through goose)
// has no Reset, and its Do retries only errors marked retryable, where our
// loops decide per error. Neither is worth a dependency for min(2*d, max).
//
// The package must not import any other package of this module: every
// layer (store, chain, stratum, pwworker) uses it.
package backoff
