package session

import (
	"fmt"
	"strings"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// play is a PlayAudio sent to media and not yet reported finished. Media
// finishes playbacks in the order they were asked for, so the head of
// call.plays is the one AudioPlaybackFinished is about.
type play struct {
	file    string
	stopped bool
}

// playAudio serves PlayAudio: a new playback replaces the one playing
// (StopAudio first).
func (s *Hub) playAudio(st *step, e *events.CmdPlayAudio) error {
	c := st.c
	src := e.File
	switch {
	case e.File != "" && e.URL != "":
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "file", Message: "give a file or a url, not both"}
	case e.File == "" && e.URL == "":
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "file", Message: "a file or a url is required"}
	case e.URL != "":
		src = e.URL
		if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
			return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "url",
				Message: fmt.Sprintf("url %q: want http:// or https://", e.URL)}
		}
	}
	if strings.ContainsAny(src, "\x00\r\n") {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "file", Message: "file holds a control character"}
	}
	if e.LoopCount < 0 {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "loop_count",
			Message: fmt.Sprintf("loop_count %d: want 0 (once) or more", e.LoopCount)}
	}
	if c.state != callcore.StateActive && c.state != callcore.StateOnHold {
		return invalidState(c, "audio is played on an answered call")
	}
	if s.stopPlays(c) {
		st.emit(&events.StopAudio{SessionRef: ref(c.id)})
	}
	c.plays = append(c.plays, play{file: src})
	st.emit(&events.PlayAudio{SessionRef: ref(c.id), FilePath: src, LoopCount: e.LoopCount})
	return nil
}

// stopAudio serves StopAudio.
func (s *Hub) stopAudio(st *step) error {
	c := st.c
	if !c.live() {
		return invalidState(c, "nothing is playing")
	}
	if !s.stopPlays(c) {
		return invalidState(c, "nothing is playing")
	}
	st.emit(&events.StopAudio{SessionRef: ref(c.id)})
	return nil
}

// stopPlays marks every pending playback stopped and reports whether one
// was still playing.
func (s *Hub) stopPlays(c *call) bool {
	playing := false
	for i := range c.plays {
		if !c.plays[i].stopped {
			c.plays[i].stopped, playing = true, true
		}
	}
	return playing
}

// onAudioPlaybackFinished reports the oldest pending playback finished,
// played out or stopped.
func (s *Hub) onAudioPlaybackFinished(st *step, _ *events.AudioPlaybackFinished) {
	s.finishPlay(st, "")
}

// finishPlay pops the oldest pending playback and reports it, with reason
// when given, else played out or stopped.
func (s *Hub) finishPlay(st *step, reason events.PlaybackReason) {
	c := st.c
	var p play
	if len(c.plays) > 0 {
		p, c.plays = c.plays[0], c.plays[1:]
	}
	if reason == "" {
		reason = events.PlaybackReasonFinished
		if p.stopped {
			reason = events.PlaybackReasonStopped
		}
	}
	if c.state == callcore.StateTerminated {
		return // the app has its CallEnded; a playback cannot outlive the call
	}
	st.emit(&events.PlaybackFinished{SessionRef: ref(c.id), File: p.file, Reason: reason})
}
