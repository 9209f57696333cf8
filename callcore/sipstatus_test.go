package callcore

import "testing"

func TestReasonPhrase(t *testing.T) {
	for code, want := range map[int]string{180: "Ringing", 486: "Busy Here", 603: "Decline",
		299: "OK", 499: "Request Failure", 699: "Global Failure"} {
		if got := ReasonPhrase(code); got != want {
			t.Errorf("ReasonPhrase(%d) = %q, want %q", code, got, want)
		}
	}
	if KnownStatus(499) || !KnownStatus(487) {
		t.Error("KnownStatus disagrees with the table")
	}
}

func TestEndReasonForStatus(t *testing.T) {
	for code, want := range map[int]EndReason{486: EndBusy, 600: EndBusy, 603: EndRejected,
		403: EndRejected, 480: EndNoAnswer, 408: EndNoAnswer, 487: EndCancelled, 500: EndFailed} {
		if got := EndReasonForStatus(code); got != want {
			t.Errorf("EndReasonForStatus(%d) = %q, want %q", code, got, want)
		}
	}
}
