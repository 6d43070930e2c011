package stratum

import (
	"bytes"
	"strconv"

	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// What this file absorbs of the public miners' habits (the README's
// compatibility table lists them with their tests, in firmware_test.go):
//
//   - mining.ping from a miner is answered "pong".
//   - A miner's reply to a request of the pool's is read, not taken for a
//     malformed request: the reply to client.get_version, which the pool
//     sends once after the handshake to a miner whose mining.subscribe
//     named no user agent (bmminer resubscribes with empty params), gives
//     the session its user agent; other replies (a "pong") are counted and
//     dropped.
//   - Version bits submitted without mining.configure are judged against
//     the pool's mask and counted (share.go, Stats.VersionBitsUnnegotiated).
//   - A nonce printed without leading zeros (NerdMiner) is read as if
//     padded (wire.DecodeSubmit).

// getVersionID is the id of the pool's client.get_version request. cgminer
// answers only a non-zero integer id (util.c send_version).
const getVersionID = 1 << 20

// handlePing answers a miner's mining.ping.
func (c *session) handlePing(req wire.Request) error {
	b, err := wire.EncodeResult(req.ID, "pong")
	if err != nil {
		return c.replyError(req.ID, wire.CodeOther, "internal error")
	}
	return c.reply(b)
}

// handleResponse reads a miner's reply to a request of the pool's. A reply
// that is not even a JSON object is malformed, as any such line.
func (c *session) handleResponse(line []byte) error {
	r, err := wire.DecodeResponse(line)
	if err != nil {
		return c.malformed(closeMalformed, err)
	}
	c.srv.st.responses.Add(1)
	if r.OK && r.Result != "" && bytes.Equal(r.ID, []byte(strconv.Itoa(getVersionID))) {
		c.agent = r.Result
		c.logger().Debug("stratum: client version", "agent", r.Result)
	}
	return nil
}

// askVersionLocked sends client.get_version once the handshake is done when
// the miner named no user agent. Called with c.mu held, on the reader.
func (c *session) askVersionLocked() {
	if c.agent != "" {
		return
	}
	_ = c.write(wire.EncodeGetVersion(getVersionID), c.srv.cfg.WriteTimeout)
}
