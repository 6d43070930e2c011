package pwworker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/stratumd/stratumd/internal/password"
)

// Serve is the child side: it reads requests from in, checks or hashes
// passwords with h, at most concurrency at once (at least 1), and writes
// each reply to out with its request's id, in the order they finish. A line
// that is too long or not a request gets a reply with kind "protocol" (id 0
// when none could be read) and Serve goes on.
//
// Serve returns nil once in reaches EOF and every request read has been
// answered; it returns early with ctx's error when ctx ends (checked between
// requests), or with the error of a failed read or write. It does not
// change the process's priority: call Renice first.
func Serve(ctx context.Context, in io.Reader, out io.Writer, h password.Argon2id, concurrency int) error {
	concurrency = max(concurrency, 1)
	br := bufio.NewReaderSize(in, 4096)
	bw := bufio.NewWriter(out)
	var (
		wmu  sync.Mutex
		werr error
		wg   sync.WaitGroup
	)
	defer wg.Wait()
	write := func(rep reply) {
		b, err := json.Marshal(rep)
		if err != nil { // cannot happen: strings and bools
			b = fmt.Appendf(nil, `{"id":%d,"err":"encode reply","kind":%q}`, rep.ID, kindProtocol)
		}
		wmu.Lock()
		defer wmu.Unlock()
		if werr != nil {
			return
		}
		bw.Write(append(b, '\n'))
		werr = bw.Flush()
	}
	writeErr := func() error {
		wmu.Lock()
		defer wmu.Unlock()
		return werr
	}
	sem := make(chan struct{}, concurrency)
	buf := make([]byte, 0, 4096)
	for {
		if err := writeErr(); err != nil {
			return fmt.Errorf("pwworker: write reply: %w", err)
		}
		line, err := readLine(br, buf, maxLine)
		switch {
		case errors.Is(err, errLineTooLong):
			write(reply{Err: fmt.Sprintf("request over %d bytes", maxLine), Kind: kindProtocol})
			continue
		case errors.Is(err, io.EOF):
			wg.Wait()
			if err := writeErr(); err != nil {
				return fmt.Errorf("pwworker: write reply: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("pwworker: read request: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			write(reply{ID: req.ID, Err: "malformed request", Kind: kindProtocol})
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			write(handle(h, req))
		})
	}
}

// handle answers one request with h.
func handle(h password.Argon2id, req request) reply {
	rep := reply{ID: req.ID}
	var err error
	switch req.Op {
	case opHash:
		rep.Hash, err = h.Hash(string(req.Password))
	case opVerify:
		rep.OK, rep.Rehash, err = h.Verify(string(req.Stored), string(req.Password))
	default:
		return reply{ID: req.ID, Err: "unknown op", Kind: kindProtocol}
	}
	if err != nil {
		rep = reply{ID: req.ID, Err: err.Error()}
		if errors.Is(err, password.ErrInvalid) {
			rep.Kind = kindInvalid
		}
	}
	return rep
}
