package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/stratum"
)

// reconnectUsage is the reconnect command's usage.
const reconnectUsage = "reconnect: usage: stratumd reconnect HOST:PORT [USER] | stratumd reconnect here [USER]"

// cmdReconnect sends the running daemon's miners (or USER's) to
// HOST:PORT with client.reconnect, or back to this pool with "here", through
// the admin call mining.reconnect_miners on the first --listen address
// (an unspecified host there means this machine) with --admin-password.
func cmdReconnect(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	order, err := parseReconnectArgs(args)
	if err != nil {
		return err
	}
	pw, err := cliconf.Secret(cfg.AdminPassword, nil)
	if err != nil {
		return fmt.Errorf("reconnect: --admin-password: %w", err)
	}
	if pw == "" {
		return errors.New("reconnect: needs the daemon's --admin-password (admin calls are off without it)")
	}
	addr, err := adminAddr(cfg.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := stratum.RequestReconnect(ctx, addr, pw, order)
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	to := "this pool"
	if order.Host != "" {
		to = net.JoinHostPort(order.Host, strconv.Itoa(order.Port))
	}
	who := "all miners"
	if order.User != "" {
		who = "the miners of " + order.User
	}
	fmt.Fprintf(stdout, "sent %s to %s: %d sessions\n", who, to, n)
	return nil
}

// parseReconnectArgs reads HOST:PORT (or "here") and the optional USER.
func parseReconnectArgs(args []string) (stratum.ReconnectOrder, error) {
	if len(args) < 1 || len(args) > 2 {
		return stratum.ReconnectOrder{}, errors.New(reconnectUsage)
	}
	var o stratum.ReconnectOrder
	if len(args) == 2 {
		if args[1] == "" {
			return o, errors.New(reconnectUsage)
		}
		o.User = args[1]
	}
	if args[0] == "here" {
		return o, nil
	}
	host, port, err := net.SplitHostPort(args[0])
	if err != nil {
		return o, fmt.Errorf("reconnect: %q is not HOST:PORT (%w); %s", args[0], err, reconnectUsage)
	}
	if host == "" {
		return o, fmt.Errorf("reconnect: %q is not HOST:PORT (no host); %s", args[0], reconnectUsage)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return o, fmt.Errorf("reconnect: port %q is not 1-65535", port)
	}
	o.Host, o.Port = host, p
	return o, nil
}

// adminAddr is where the reconnect command reaches the daemon: the first
// --listen address (default 0.0.0.0:3333), on loopback when its host is
// unspecified.
func adminAddr(listen listenList) (string, error) {
	first := "0.0.0.0:3333"
	if len(listen) > 0 {
		first = listen[0].Addr
	}
	host, port, err := net.SplitHostPort(first)
	if err != nil {
		return "", fmt.Errorf("reconnect: --listen %q: %w", first, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
