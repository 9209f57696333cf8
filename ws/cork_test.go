package ws

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"testing"
)

// recConn records the writes that reach the network.
type recConn struct {
	net.Conn
	writes []string
	err    error
}

func (r *recConn) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestCorkConn(t *testing.T) {
	rec := &recConn{}
	c := &corkConn{Conn: rec, bufs: newCorkBufs()}
	write := func(s string) {
		t.Helper()
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write %q: %d, %v", s, n, err)
		}
	}
	write("a") // uncorked: straight through
	c.cork()
	write("b")
	write("c")
	if want := []string{"a"}; !slices.Equal(rec.writes, want) {
		t.Fatalf("corked writes reached the network: %q", rec.writes)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	write("d")
	if want := []string{"a", "bc", "d"}; !slices.Equal(rec.writes, want) {
		t.Fatalf("writes %q, want %q", rec.writes, want)
	}

	// Past corkLimit, what is held goes out, then the write.
	rec.writes = nil
	c.cork()
	write("e")
	big := string(bytes.Repeat([]byte("x"), corkLimit))
	write(big)
	if len(rec.writes) != 2 || rec.writes[0] != "e" || rec.writes[1] != big {
		t.Fatalf("%d writes, want e then the big one", len(rec.writes))
	}

	// A write error sticks.
	rec.err = errors.New("broken")
	write("f") // held
	if err := c.uncork(); err == nil {
		t.Fatal("uncork: no error")
	}
	rec.err = nil
	if _, err := c.Write([]byte("g")); err == nil {
		t.Fatal("write after an error succeeded")
	}
}
