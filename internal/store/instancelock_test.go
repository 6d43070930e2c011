package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// TestLockInstance: one instance id, one holder per database; another id
// is free; a closed lock frees its id.
func TestLockInstance(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	ctx := context.Background()
	a, err := store.LockInstance(ctx, url, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := store.LockInstance(ctx, url, 1, 300*time.Millisecond); !errors.Is(err, store.ErrInstanceInUse) {
		t.Fatalf("second lock of instance 1: %v, want ErrInstanceInUse", err)
	}
	b, err := store.LockInstance(ctx, url, 2, 0)
	if err != nil {
		t.Fatalf("instance 2 beside 1: %v", err)
	}
	b.Close()
	b.Close() // idempotent
	// A holder that goes away while another waits: the waiter gets it.
	got := make(chan error, 1)
	go func() {
		l, err := store.LockInstance(ctx, url, 1, time.Minute)
		l.Close()
		got <- err
	}()
	a.Close()
	if err := <-got; err != nil {
		t.Fatalf("instance 1 after its holder closed: %v", err)
	}
}
