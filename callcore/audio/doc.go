// Package audio holds callbus's pure audio code: G.711 µ-law and A-law
// (lookup tables built from the ITU-T reference algorithm), reading WAV
// files of any common PCM or float layout into 8 kHz mono with an
// anti-aliased resampler, writing WAV files and crash-safe call recordings,
// RFC 4733 telephone events (parsing, a receiver that reports each digit
// once, a sender that produces a digit's packet sequence), tone generation,
// Goertzel frequency analysis and an E-model MOS estimate.
//
// It imports only the standard library, so the media layer and the Go test
// phone can share it without depending on each other. Nothing here starts a
// goroutine or keeps mutable package state: the package-level tables are
// computed once and only read afterwards.
package audio
