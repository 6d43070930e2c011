package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifier(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := newNotifier(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "20000"}))
	if err := n.Ready("serving"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, _, err := l.ReadFromUnix(buf)
	if err != nil || string(buf[:k]) != "READY=1\nSTATUS=serving" {
		t.Fatalf("got %q, %v", buf[:k], err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Watchdog(ctx, func() bool { return true }) }()
	k, _, err = l.ReadFromUnix(buf)
	cancel()
	if err != nil || string(buf[:k]) != "WATCHDOG=1" {
		t.Fatalf("watchdog: %q, %v", buf[:k], err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	k, _, _ = l.ReadFromUnix(buf)
	if !strings.HasPrefix(string(buf[:k]), "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("reloading: %q", buf[:k])
	}
	// Without NOTIFY_SOCKET nothing is sent and nothing fails.
	if err := newNotifier(env(nil)).Ready("x"); err != nil {
		t.Fatal(err)
	}
}
