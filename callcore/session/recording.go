package session

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/events"
)

// RecordingFormat is the format of every recording.
const RecordingFormat = "wav"

// recording is the recording of a call, from StartRecording until media's
// RecordingStopped.
type recording struct {
	id       string
	path     string
	started  bool // RecordingStarted received
	stopping bool // StopRecording sent
}

// startRecording serves StartRecording: one recording at a time, written
// to Config.RecordingDir/<recording id>.wav, stopped after MaxDurationS
// when it is set. The recording id is in the call's snapshot.
func (s *Hub) startRecording(st *step, e *events.CmdStartRecording) error {
	c := st.c
	if e.MaxDurationS < 0 {
		return &callcore.Error{Code: callcore.CodeValidationFailed, Field: "max_duration_s",
			Message: fmt.Sprintf("max_duration_s %d: want 0 (no limit) or more", e.MaxDurationS)}
	}
	switch {
	case c.state != callcore.StateActive && c.state != callcore.StateOnHold:
		return invalidState(c, "only an answered call can be recorded")
	case c.rec != nil:
		return invalidState(c, "it is already recording ("+c.rec.id+")")
	}
	id := callcore.NewID("rec_")
	r := &recording{id: id, path: filepath.Join(s.cfg.RecordingDir, id+"."+RecordingFormat)}
	c.rec, c.lastRec = r, id
	st.emit(&events.StartRecording{SessionRef: ref(c.id), FilePath: r.path, Format: RecordingFormat})
	if e.MaxDurationS > 0 {
		st.arm(&c.recTimer, time.Duration(e.MaxDurationS)*time.Second, func(st *step) {
			if st.c.rec == r && !r.stopping && st.c.live() {
				r.stopping = true
				st.emit(&events.StopRecording{SessionRef: ref(st.c.id)})
			}
		})
	}
	return nil
}

// stopRecording serves StopRecording.
func (s *Hub) stopRecording(st *step) error {
	c := st.c
	if c.rec == nil || c.rec.stopping || !c.live() {
		return invalidState(c, "it is not recording")
	}
	c.rec.stopping = true
	st.disarm(&c.recTimer)
	st.emit(&events.StopRecording{SessionRef: ref(c.id)})
	return nil
}

func (s *Hub) onRecordingStarted(st *step, e *events.RecordingStarted) {
	c := st.c
	if c.rec == nil || (e.FilePath != "" && e.FilePath != c.rec.path) {
		s.log.Warn("RecordingStarted for no recording of ours", "session_id", c.id, "file_path", e.FilePath)
		return
	}
	c.rec.started = true
}

// onRecordingStopped reports a finished recording, even after the call
// ended: the file exists and the app wants it.
func (s *Hub) onRecordingStopped(st *step, e *events.RecordingStopped) {
	c := st.c
	path := e.FilePath
	var id string
	if r := c.rec; r != nil && (path == "" || path == r.path) {
		id, path = r.id, r.path
		c.rec = nil
		st.disarm(&c.recTimer)
	} else {
		id = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		s.log.Warn("RecordingStopped for no recording in progress", "session_id", c.id, "file_path", path)
	}
	st.emit(&events.RecordingFinished{SessionRef: ref(c.id), RecordingID: id, FilePath: path, DurationMS: e.DurationMS})
}
