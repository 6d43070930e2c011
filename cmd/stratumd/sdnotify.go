package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol: datagrams to the unix socket
// named by $NOTIFY_SOCKET. Without that variable (not under systemd, or not
// Type=notify) every call does nothing.
type notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // half of $WATCHDOG_USEC, 0 when off
}

func newNotifier(lookupEnv func(string) (string, bool)) *notifier {
	n := &notifier{}
	if path, ok := lookupEnv("NOTIFY_SOCKET"); ok && path != "" {
		if path[0] == '@' { // abstract namespace
			path = "\x00" + path[1:]
		}
		n.addr = &net.UnixAddr{Name: path, Net: "unixgram"}
	}
	if usec, ok := lookupEnv("WATCHDOG_USEC"); ok {
		if v, err := strconv.ParseInt(usec, 10, 64); err == nil && v > 0 {
			pid, hasPid := lookupEnv("WATCHDOG_PID")
			if !hasPid || pid == strconv.Itoa(os.Getpid()) {
				n.watchdog = time.Duration(v) * time.Microsecond / 2
			}
		}
	}
	return n
}

// send writes one notification; errors are returned for logging only.
func (n *notifier) send(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready tells systemd start-up is complete.
func (n *notifier) Ready(status string) error { return n.send("READY=1\nSTATUS=" + status) }

// Stopping tells systemd a graceful stop has begun.
func (n *notifier) Stopping() error { return n.send("STOPPING=1") }

// Reloading tells systemd a configuration reload has begun; Ready ends it.
func (n *notifier) Reloading() error {
	return n.send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Watchdog pings systemd's watchdog every half WatchdogSec while healthy()
// says the daemon works; a stalled daemon stops pinging and is restarted.
func (n *notifier) Watchdog(ctx context.Context, healthy func() bool) error {
	if n.addr == nil || n.watchdog == 0 {
		return nil
	}
	t := time.NewTicker(n.watchdog)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if healthy() {
				n.send("WATCHDOG=1")
			}
		}
	}
}
