// Package rpcsource is the chain.Source of stratumd's RPC mode (--node rpc):
// templates from, and found blocks to, an external btcd or Bitcoin Core node
// (or several).
//
// # Nodes
//
// Every node is reached over HTTP POST JSON-RPC (getblocktemplate with the
// segwit rule, and the signet rule on signet, which Core requires there;
// submitblock, whose BIP 22 answers go through chain.BIP22Result, the table
// the embedded node shares; getbestblockhash, getblockheader). At connect
// the node's kind is detected (getnetworkinfo, then getinfo) unless
// configured, and its genesis block is checked against the configured
// network. New tips are followed per kind:
//
//   - btcd: a websocket to its /ws endpoint with notifyblocks (NewTip as
//     soon as the block is connected) and notifynewtransactions
//     (MempoolChanged, coalesced). Note that btcd's getblocktemplate
//     regenerates a template for mempool changes at most once a minute
//     (new tips at once).
//   - Bitcoin Core: ZMQ hashblock (pure-Go zmq4 SUB socket, reconnecting)
//     when configured, and getblocktemplate long polling, which also reports
//     mempool changes and takes over when ZMQ is not configured or silent.
//     Core numbers hashblock messages from 0 at each start; a break in the
//     numbers (messages lost, the subscription down, Core restarted) is
//     counted (Stats.ZMQGaps), logged, and answered with a tip refresh and
//     a fresh template. Tested against a real libzmq publisher (Debian's
//     libzmq5 via python3-zmq, scripts/zmq.sh) sending Core's frames.
//   - bcoin (tested against the pinned bcoin 1.0.2 from npm,
//     scripts/bcoin.sh): it answers getnetworkinfo like Core and is driven
//     as a Core node, by long polling (it has no ZMQ). Its differences:
//     submitblock answers "rejected: <reason>" as btcd does ("rejected:
//     duplicate" a duplicate, "rejected: bad-prevblk" an orphan, hence
//     inconclusive); getblocktemplate returns a cached template, rebuilt on
//     a new tip or on a transaction more than 10 s after the last rebuild
//     (so its long poll reports mempool changes at most that often); it
//     sends default_witness_commitment whenever the request carries the
//     segwit rule, also before segwit is active.
//   - Both: a slow getbestblockhash poll (Config.PollInterval, default 5 s)
//     as the last resort and health check.
//
// # Several nodes and outages
//
// Templates come from the first healthy node in configured order; a found
// block is submitted to all nodes at once and the best answer wins
// (accepted from any node). A failing node is marked down (counted in
// Stats, logged) and reconnected with capped exponential backoff
// (package backoff: Config.BackoffMin, 250 ms, doubling to BackoffMax,
// 2 s; the same for a lost ZMQ subscription); on its
// return its tip is fetched and NewTip signalled if it changed. While no
// node is healthy Template fails with ErrNoHealthyNode and the stratum
// server keeps serving its last job. Node replies are untrusted input: a
// template is fully validated (hex, hashes, weights, fees against the
// subsidy, the node's witness commitment against our own computation)
// before it is used.
//
// # Signet
//
// A signet block must carry a solution to the network's challenge in its
// witness commitment (BIP 325), and stratumd signs nothing: only a signet
// whose challenge is OP_TRUE (51, Core's -signetchallenge=51) can be
// mined. On any other (the default signet's challenge is its signers'
// multisig) Template fails with an error wrapping chain.ErrUnmineableSignet
// and one error line per node says why, at the first template. On signet
// every job's coinbase carries a witness commitment, which Core requires
// of every signet block.
//
// btcd's submitblock, like Core's, does not add the coinbase witness
// reserved value; chain.Job.Block always puts it in the coinbase when the
// coinbase carries a witness commitment.
//
// # Bitcoin Core configuration
//
// The bitcoin.conf lines an operator needs (mainnet ports; testnet/signet/
// regtest settings go in a [test]/[signet]/[regtest] section):
//
//	server=1
//	# either cookie authentication (Core's default: give stratumd the
//	# file, e.g. --rpc-cookie ~/.bitcoin/.cookie; it is re-read when Core
//	# restarts and writes a new one) or a user and password (--rpc-user,
//	# --rpc-pass; an rpcauth= line from share/rpcauth/rpcauth.py works too):
//	rpcuser=stratumd
//	rpcpassword=change-me
//	# only when stratumd runs on another host:
//	rpcbind=0.0.0.0
//	rpcallowip=10.0.0.0/8
//	# new tips at once (--zmq-block tcp://127.0.0.1:28332):
//	zmqpubhashblock=tcp://127.0.0.1:28332
//	# one RPC worker stays busy with stratumd's template long poll:
//	rpcthreads=8
//
// and stratumd is started with --node rpc --rpc-url http://127.0.0.1:8332
// (several --rpc-url for several nodes).
//
// For btcd (btcd.conf): rpcuser=, rpcpass=, and either notls=1 with
// rpclisten=127.0.0.1:8334 (loopback only) or its TLS certificate rpc.cert
// given to stratumd (NodeConfig.CAFile) with an https:// URL.
//
// # Imports
//
// The package builds on chain (Source, templates, jobs) and backoff only;
// it must not import the store or the stratum server, which consume it
// through chain.Source.
package rpcsource
