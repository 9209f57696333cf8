// Package ivr runs webhook-driven phone apps (DESIGN.md §7, issue 10): it
// POSTs a call's events to the app, applies the actions the app answers
// with, and delivers status callbacks in seq order per call.
//
// This file set holds the parts of the contract that need no call: the
// request bodies callbus sends (Request), the app's reply and its verbs
// (DecodeReply), and the signature every request carries (Sign, Verify).
// The runner that drives calls with them is not built yet.
package ivr
