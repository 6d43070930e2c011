package rpcsource

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestLongPollFirstTemplateNewTip: a block arrives between the handshake
// (tip at genesis) and the first, plain getblocktemplate, whose template
// is then on the new tip. The long poll that follows waits on that
// template's id and does not return for the block, and the slow poll is an
// hour away: the first template itself must bring NewTip. (Seen against a
// real bcoin, where a block submitted right after connect raced the first
// template.)
func TestLongPollFirstTemplateNewTip(t *testing.T) {
	core := newFakeCore(t, "u", "p")
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		var req struct {
			Method string       `json:"method"`
			Params []gbtRequest `json:"params"`
		}
		if json.Unmarshal(body, &req) == nil && req.Method == "getblocktemplate" &&
			len(req.Params) == 1 && req.Params[0].LongPollID == "" {
			once.Do(func() {
				core.set(func(f *fakeCore) { f.tip, f.height, f.gbt = hashOf(1), 1, f.templateOn(hashOf(1), 1) })
			})
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		core.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	s := startSource(t, fastConfig(NodeConfig{URL: srv.URL, User: "u", Pass: "p", Kind: KindCore}))
	u := waitUpdate(t, s, "NewTip from the first template", tipIs(hashOf(1)))
	if u.Height != 1 {
		t.Fatalf("update %+v", u)
	}
}
