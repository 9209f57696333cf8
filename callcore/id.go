package callcore

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns prefix followed by 20 random base32 characters (100 bits),
// e.g. NewID("tx_"). It is unique without coordination.
func NewID(prefix string) string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + idEncoding.EncodeToString(b[:])[:20]
}

// NewSessionID returns a call session id owned by node: the node id, a dot,
// and 20 random characters. Node ids never contain a dot, so the owner of
// any session id is SessionNode(id) (DESIGN.md §10).
func NewSessionID(node string) string { return NewID(node + ".") }

// SessionNode returns the node that owns a session id, or "" when the id
// names none.
func SessionNode(id string) string {
	node, _, ok := strings.Cut(id, ".")
	if !ok {
		return ""
	}
	return node
}
