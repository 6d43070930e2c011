// Package stratum is the pool's Stratum v1 server: sessions, jobs, share
// validation, variable difficulty, found blocks, bans and admin calls; and
// the two components that follow a found block after its share: the
// Resubmitter and the Recorder of share dumps.
//
// It holds no framing. The protocol (method and error-code constants, the
// typed params, the bounded line reader, the decoders and the
// server→client encoders) is package wire, which both the server and its
// tests use; a session reads, decodes and writes only through it.
// Admission and abuse control (bans, per-address connection caps and
// rates, the failed-authorization cache and limit, the admin-call limits,
// the argon2 slots) is package admission: the server holds one Controller
// on the server clock, and the accept loop and the sessions ask it
// questions.
//
// By file: server.go (Config, New, Serve, Stats, the accept loop and the
// tracked sessions), session.go (one connection: its reader loop, its
// handlers and its writes), close.go (why and where a session ends),
// auth.go and admin.go (authorization and the admin calls), quirks.go
// (what the public miners do beyond the core protocol: mining.ping, replies
// to client.get_version, version bits without mining.configure),
// reconnect.go (sending miners elsewhere on demand: Reconnect, the admin
// call mining.reconnect_miners and its client RequestReconnect),
// jobs.go (the job manager
// and the notify fan-out), share.go (the share checks), vardiff.go,
// profile.go (a listener's difficulty profile: ServeListener, Profile),
// retarget.go (work in flight across a retarget down),
// blockfound.go (a share that is a block), solo.go (SOLO mode: solo users
// and listeners, the per-address coinbase of a job), rejectstats.go (the
// per-worker reject hook, Config.Rejects), resubmit.go, recorder.go,
// park.go and park_*.go (idle sessions without a goroutine: the parker),
// remoteip.go (the address a connection is counted and recorded under), and
// rawwrite_*.go (deadline-free socket writes, which are I/O and so stay
// here).
//
// It imports wire, admission, internal/chain (templates, jobs, blocks),
// internal/store (users, shares and blocks, behind the small interfaces of
// server.go), internal/proxyproto, and the leaf packages password (the
// admin password), username and backoff. It must not import internal/payout,
// internal/httpapi, internal/miner or stratumtest, nor anything else that
// imports it.
//
// Vardiff retargets one connection's share difficulty toward a target time
// per share on an injected clock.
//
// # Server
//
// New builds a Server from a Config; Serve runs the sessions of one
// listener (it may be called for several) and Run the job manager; both
// return when their context ends. A connection's handshake runs on one
// goroutine, its reader. Once the session is subscribed and authorized, on
// Linux it parks whenever it has had no line for a second: its reader
// returns, its empty line buffer is dropped and an epoll set of the
// server's (the parker, written here because Go's poller needs a blocked
// goroutine per socket, and an event-loop library would replace the whole
// connection layer) watches the socket; a line, a hang-up, the idle
// deadline or a stop gives it a fresh reader. An idle miner thus costs no
// goroutine, stack or buffer (docs/BENCHMARKS.md, issue 19). Elsewhere, and
// for TLS and PROXY protocol connections, the read loop moves to a fresh
// goroutine after the handshake, so that the stack the handshake grew is
// released while the miner idles. Writes go through a per-session mutex
// with a write deadline. When Serve's context ends, every session of that
// listener gets client.reconnect (empty params) and is closed.
//
// The job manager builds a job at once, then one on every new tip (sent with
// clean_jobs=true, and only then) and, while the mempool changes, at most
// one per Config.JobInterval (clean_jobs=false). Each job's mining.notify
// line is built once and written to every ready session by a bounded set of
// workers; a session whose write times out is ended, so a slow reader
// delays the others by at most WriteTimeout. Job ids are short hex numbers
// carrying the instance id, unique for the process.
//
// Extranonce1 is 4 bytes: Config.InstanceID, then 3 bytes unique among the
// instance's live sessions.
//
// # How a session ends
//
// A session has one exit. The reader loop switches on the request's
// method; every handler returns an error, nil to go on, and the loop
// returns the first error to its exit (session.end), the one place that
// closes the connection, charges the address, counts and logs the end
// (once) and forgets the session. The error carries a close reason:
// hung-up, idle-timeout, handshake-timeout, read-error (the connection
// ended under the session), write-timeout, write-error (a write failed),
// shutdown (the listener stopped), reconnect (sent elsewhere on demand), line-too-long, malformed (each counted
// in Malformed and charged against BanMalformed), invalid-shares (the
// address is banned), not-synced, panic (a handler's panic, recovered by
// the loop, logged with its stack and counted; it drops that miner only).
// A write that fails on another goroutine (the notify fan-out, the vardiff
// tick, shutdown) records its reason and closes the connection, and the
// reader's exit then ends the session for that reason; a reason the
// session decided on a line it read stands over a write failure, which is
// then only its last reply not arriving. Stats.SessionsClosed counts the
// ends by reason; the everyday ones (hang-ups, timeouts, shutdown) are
// logged at debug level only.
//
// # Difficulty
//
// Each listener has a difficulty profile (ServeListener; Serve uses the
// server's Limits alone): its own MinDiff, MaxDiff, StartDiff,
// VardiffTarget and Pow2, each zero field taking the server's Limits in
// force (they may change with SetLimits; the profile is resolved again
// then). Below, "the limits" are the session's listener's.
//
// A session starts at the limits' StartDiff. mining.configure's
// minimum-difficulty sets a floor for the session, within [MinDiff,
// MaxDiff]. mining.suggest_difficulty is a hint clamped to [MinDiff,
// MaxDiff] (and the floor); fractional values below 1 are kept when MinDiff
// allows. Sent before the session's first difficulty (that is, before it is
// both subscribed and authorized) it is the start difficulty; sent later it
// retargets at once, and vardiff continues from it. With Pow2 every
// difficulty is rounded to a power of two inside [MinDiff, MaxDiff].
//
// Every job sent to a session records the session's difficulty at that
// moment, and a share counts at the difficulty recorded for the job id it
// names. A retarget (vardiff or suggest_difficulty) sends
// mining.set_difficulty and then the current job again under an alias id
// "<job id>.<n>" with clean_jobs=false: work from that notify on is judged
// at the new difficulty, while shares for the ids sent earlier are still
// accepted and credited at their old difficulty. Because some firmware
// takes a new difficulty for work on a job it already has (cgminer at
// once, ESP-Miner when it dequeues a queued notify), after a retarget
// every job id sent before it whose difficulty is higher also accepts
// shares at the new one for RetargetGrace: work in flight is never "low
// difficulty". Such a share is credited at the new difficulty; one that
// meets its job's own keeps that, until the session has sent one that met
// only the new difficulty in this grace (RetargetGrace says why). Vardiff
// runs on each accepted share and every Config.VardiffTick.
//
// # Share checks
//
// A mining.submit before mining.subscribe gets 25, before any authorize 24.
// Then, in this order: a job id the session was not sent, or one of an
// older tip, or one pushed out of the session's last 8 jobs, 21; a worker
// not authorized on this session, 24; an extranonce2 of the wrong size, 20;
// ntime outside [template mintime, now + 2h], 20; version bits outside
// the negotiated mask, or, without mining.configure, outside the pool's
// Config.VersionMask, 20 (zero bits are always fine; bits accepted without
// configure are counted in Stats.VersionBitsUnnegotiated); a duplicate (extranonce1, extranonce2, ntime, nonce, final version)
// on the same job, 22; a hash above the share target, 23. The final version
// is (job version &^ mask) | (bits & mask). An accepted share is spooled
// durably (ShareSink.Write) and only then acknowledged; when that fails the
// miner gets 20 "share not recorded", never true.
//
// A share that meets the network target is assembled into the full block
// and handed to Source.SubmitBlock before anything else is done with it.
// Then the share is spooled carrying the serialized block and the blocks
// row's fields (status submitted, or rejected with the node's reason), and
// only then acknowledged: a found block is as durable as the share. The
// drainer stores the share and the row (raw block included) in one
// transaction. Only when the spool refuses the share (the miner then gets
// 20) does the session insert the row itself (Config.Blocks).
//
// # Found blocks
//
// Resubmitter follows every found block the node did not reject until a
// node has it in its best chain (chain.BestChainReader): the sessions hand
// it their blocks at once, the drainer the blocks it stores, and it reads
// the blocks still submitted from the table at start and every 30 s. A
// block missing from every node's best chain is handed to the source again
// with backoff (1 s doubling to 1 min, at most 100 a second); it becomes
// confirmed once a node has it, orphaned ("chain moved N blocks past
// height H without it") once a node's best chain is 6 blocks past its
// height with another block there, rejected when a node rejects it. The
// node's answers are read as BIP 22 says: duplicate, inconclusive and
// duplicate-inconclusive are not rejections.
//
// # Share dump
//
// Recorder writes <ShareDir>/<height>-<hash>.json for every block found,
// once: it is the one writer of dumps, fed by the drainer once a block's
// share and row are stored (and by the session for a row it inserted), and
// at start and every minute by the blocks whose dump is not marked written
// (blocks.dumped_at). The file goes through a temporary file, fsync and
// rename:
//
//	{
//	  "height": 812345,
//	  "hash": "00000000000000000002a7c4...",      // block hash, as explorers show it
//	  "prev_hash": "0000000000000000000183b1...",
//	  "time": "2025-06-01T12:00:00.123456Z",     // RFC 3339, UTC: share accepted
//	  "finder": {"user": "bc1q...", "worker": "rig1"},
//	  "reward": 312500000,                       // satoshis: the coinbase value
//	  "network_difficulty": 1.2e14,
//	  "status": "submitted",                     // or "rejected"
//	  "mode": "pplns",                           // or "solo": the coinbase paid the finder
//	  "round": {
//	    "from": "0000000000000000000051d2...",   // previous pool block; null for the first
//	    "users": [{"username": "bc1q...", "shares": 1234, "difficulty_sum": 5.6e9}]
//	  }
//	}
//
// The round is every share after the pool's previous block that was not
// rejected, through the block's own share, summed per user (sorted by name).
// A pool block's round counts pool shares only and starts after the
// previous pool block; a solo block's round is its finder's own shares
// since that solo miner's previous block (solo.go).
// The status is the row's when the dump was written.
//
// # Limits and bans
//
// Lines are at most Config.MaxLineLength (16 KiB) long, enforced while
// reading. A session must be subscribed and authorized within
// HandshakeTimeout and send a valid line at least every IdleTimeout. A line
// that is too long, not JSON or not a request gets an error reply and closes
// the connection; BanMalformed of them from one address within BanDuration
// ban it. Invalid params get error 20. When more than BanThreshold of a
// session's recent submits (at least BanMinSubmits) were invalid (stale
// shares do not count), its address is banned for BanDuration and the
// session closed. Banned addresses, connections beyond MaxConnsPerIP and
// connections opened faster than ConnRatePerIP (after a burst of
// ConnBurstPerIP) are closed at accept, before any session work, so that a
// connection flood costs little; refusals are counted and logged once, then
// summarized once a minute. SetLimits replaces the difficulty and ban
// settings while the server runs. The session keeps its own counts of recent
// submits and decides the invalid-share ban; the admission controller keeps
// everything per address (connections, connection rate, malformed lines,
// bans) and answers Serve's accept loop before a session exists.
//
// # Authorization and admin calls
//
// mining.authorize takes "user.worker" (split at the first '.'); a session
// may authorize several workers, and a submit must name one of them. With
// Auth "password" the user must exist and its password verify; successes
// are cached for 10 minutes per (user, SHA-256 of the password), identical
// concurrent checks from one address are merged, and argon2 runs on at
// most GOMAXPROCS-1 goroutines (at least one), so a flood of password
// checks leaves a processor to the sessions. Wrong passwords are bounded
// too: a wrong (user, password) pair is remembered for a minute and fails
// at once when tried again (a misconfigured fleet reconnecting with it
// costs no argon2; the price is that a password changed in the database to
// exactly that value is refused until the minute ends), and after 10 failed
// password checks from one address within a minute, further attempts from
// it that would need a check fail unchecked ("too many failed
// authorizations; try later", logged once per address and window) until
// the minute ends; cached successes still pass, so a farm behind the same
// NAT as one misconfigured miner keeps working. Unknown users cost no
// argon2 and are not remembered. Stats counts authorizations refused after
// a check (AuthFailures) and without one (AuthRefused). With Auth "open"
// the user must be an address of the network; its row is created on first
// sight. mining.authorize_admin checks the configured admin password
// against its argon2id hash (only the hash is kept); 5 failures per minute
// per address (30 overall) make further attempts fail unchecked.
// mining.add_user works in admin sessions only and is limited to 60 per
// minute. mining.reconnect_miners [host, port, wait, user?, message?] works
// in admin sessions only: every other session, or those with a worker of
// the user, gets client.show_message (with a message), then
// client.reconnect [host, "port", wait] (empty params for an empty host)
// and is closed; the reply is how many. Server.Reconnect does the same for
// the daemon, and RequestReconnect is the call's client (stratumd
// reconnect).
//
// # Miners' habits
//
// A miner's mining.ping gets "pong". A line that is a reply (no method, a
// result or an error) is read as one, never as a malformed request: after
// the handshake the server asks client.get_version of a miner whose
// mining.subscribe named no user agent, and the answer becomes the
// session's user agent; other replies are counted (Stats.Responses). Passwords are never logged. The caches, the limits and the argon2
// slots are the admission controller's; the server merges identical checks
// and talks to the user store.
package stratum
