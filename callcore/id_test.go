package callcore

import "testing"

func TestSessionIDs(t *testing.T) {
	a, b := NewSessionID("node-1"), NewSessionID("node-1")
	if a == b {
		t.Fatal("two session ids are equal")
	}
	if len(a) != len("node-1.")+20 || SessionNode(a) != "node-1" {
		t.Fatalf("session id %q owned by %q", a, SessionNode(a))
	}
	if SessionNode("no-dot") != "" {
		t.Fatal("an id without a node has an owner")
	}
}
