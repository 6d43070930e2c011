package rpcsource

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// wsConn is the notification websocket of a btcd node.
type wsConn struct {
	client *rpcclient.Client
	done   chan struct{} // closed when the client has shut down
}

// dialWS connects btcd's websocket endpoint (/ws) and subscribes to block
// connections (NewTip at once, with the height from the notification) and
// accepted transactions (MempoolChanged, coalesced by the notifier). The
// client does not reconnect by itself: when the socket drops, done closes
// and the session ends, and the node's loop reconnects.
func (n *node) dialWS(ctx context.Context) (*wsConn, error) {
	user, pass, err := n.rpc.auth.get(false)
	if err != nil {
		return nil, fmt.Errorf("rpcsource: %s websocket: %w", n.ep.name, err)
	}
	cfg := &rpcclient.ConnConfig{
		Host:                 n.ep.host,
		Endpoint:             "ws",
		User:                 user,
		Pass:                 pass,
		DisableTLS:           n.ep.tls == nil,
		Certificates:         n.ep.caPEM,
		DisableAutoReconnect: true,
	}
	handlers := &rpcclient.NotificationHandlers{
		OnFilteredBlockConnected: func(height int32, header *wire.BlockHeader, _ []*btcutil.Tx) {
			if header == nil {
				return
			}
			n.src.setNodeTip(n, tipInfo{hash: header.BlockHash(), height: height, known: true})
		},
		OnTxAccepted: func(*chainhash.Hash, btcutil.Amount) {
			n.src.onMempool(n)
		},
	}
	// rpcclient.New dials without a timeout; the handshake just reached the
	// same host over HTTP, so the dial does not hang on an unreachable one.
	client, err := rpcclient.New(cfg, handlers)
	if err != nil {
		return nil, fmt.Errorf("rpcsource: %s websocket: %w", n.ep.name, err)
	}
	ws := &wsConn{client: client, done: make(chan struct{})}
	go func() {
		client.WaitForShutdown()
		close(ws.done)
	}()
	// rpcclient calls take no context: shutting the client down fails the
	// pending ones.
	stop := context.AfterFunc(ctx, client.Shutdown)
	defer stop()
	if err := client.NotifyBlocks(); err != nil {
		ws.close()
		return nil, fmt.Errorf("rpcsource: %s notifyblocks: %w", n.ep.name, err)
	}
	if err := client.NotifyNewTransactions(false); err != nil {
		ws.close()
		return nil, fmt.Errorf("rpcsource: %s notifynewtransactions: %w", n.ep.name, err)
	}
	return ws, nil
}

// close shuts the client down and waits for its goroutines.
func (w *wsConn) close() {
	w.client.Shutdown()
	<-w.done
}
