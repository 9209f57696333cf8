// Package sdp holds callbus's pure SDP code (RFC 4566, RFC 3264), shared by
// the session, dialog and media layers and the Go test phone: media
// directions and their offer/answer algebra, a lenient reader of a
// description's sections (connection address, port, codecs, direction),
// the direction rewrite and o= version bump of a hold or resume re-offer,
// the normalisation that lets the strict pion/sdp parser accept what real
// phones send, and the RFC 3551 codec tables.
//
// It imports only the standard library and pion/sdp, never another callbus
// package, so any layer may use it without depending on another. Which
// codec to pick or which direction to answer with is each layer's policy;
// this package only states what the protocol says. Nothing here keeps
// mutable package state.
package sdp
