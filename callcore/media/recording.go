package media

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// recordQueue is how many 20 ms frames a recording's writer may fall
// behind the clock (1 s) before frames are dropped — and written as
// silence once it catches up, so the file stays aligned to wall time.
const recordQueue = 50

// wavSink is where a recording goes: an *audio.WAVWriter.
type wavSink interface {
	Write(frames ...[]int16) error
	Close() error
	Duration() time.Duration
}

// recFrame is one tick of a recording: gap frames of silence the writer
// missed before it, then the frame received (left) and the frame sent
// (right).
type recFrame struct {
	gap  int
	l, r [audio.FrameSamples]int16
}

// recorder is a recording in progress. The clock feeds ch; the writer
// goroutine writes the file, so a slow disk never delays the clock.
//
// ch is closed by whoever detaches the recorder from its session (under
// the session's mu, so the clock never sends on a closed channel). err is
// set by the writer before done closes.
type recorder struct {
	path    string
	w       wavSink
	ch      chan recFrame
	done    chan struct{}
	err     error
	pending int // frames dropped since the last one queued; clock only, under mu
}

// startRecording opens a stereo 8 kHz WAV at the given path (creating its
// directory) and starts recording: left the far end, right what media
// sends, one frame per tick. A recording that cannot start is
// MediaError{recording_failed}.
func (h *Hub) startRecording(ctx context.Context, ev *events.StartRecording) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrRecordingFailed, "StartRecording: no media stream for the session")
		return
	}
	fail := func(format string, args ...any) {
		h.failFor(ctx, s, events.MediaErrRecordingFailed, "StartRecording %s: "+format, append([]any{ev.FilePath}, args...)...)
	}
	switch {
	case ev.Format != "wav":
		fail("format %q is not supported (wav)", ev.Format)
		return
	case ev.FilePath == "":
		fail("no file_path")
		return
	}
	s.mu.Lock()
	ph, busy := s.phase, s.rec != nil
	s.mu.Unlock()
	switch {
	case ph != phaseStarted:
		fail("the media stream is %s", ph)
		return
	case busy:
		fail("the session is already recording")
		return
	}
	if err := os.MkdirAll(filepath.Dir(ev.FilePath), 0o750); err != nil {
		fail("%v", err)
		return
	}
	w, err := h.createWAV(ev.FilePath, 2)
	if err != nil {
		fail("%v", err)
		return
	}
	r := &recorder{path: ev.FilePath, w: w, ch: make(chan recFrame, recordQueue), done: make(chan struct{})}

	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	ok := s.phase == phaseStarted && s.rec == nil
	if ok {
		s.rec = r
	}
	s.mu.Unlock()
	if !ok {
		_ = w.Close()
		_ = os.Remove(ev.FilePath)
		h.publish(ctx, h.mediaErrorEvent(s.id, events.MediaErrRecordingFailed, "StartRecording %s: the media stream stopped", ev.FilePath))
		return
	}
	if !h.g.Go("recording writer", func(context.Context) { h.writeRecording(s, r) }) {
		// Close has begun (a handler it stopped waiting for got here).
		s.mu.Lock()
		s.rec = nil
		s.mu.Unlock()
		_ = w.Close()
		_ = os.Remove(ev.FilePath)
		h.publish(ctx, h.mediaErrorEvent(s.id, events.MediaErrRecordingFailed, "StartRecording %s: the media layer is shutting down", ev.FilePath))
		return
	}
	h.publish(ctx, &events.RecordingStarted{SessionRef: ev.SessionRef, FilePath: ev.FilePath})
}

// stopRecording closes the recording: RecordingStopped{file_path,
// duration_ms}, or MediaError{recording_failed} when the file could not
// be completed. Without a recording (it failed, and said so) the answer is
// MediaError{recording_failed} too, so the session never waits.
func (h *Hub) stopRecording(ctx context.Context, ev *events.StopRecording) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrRecordingFailed, "StopRecording: no media stream for the session")
		return
	}
	r := s.detachRecording()
	if r == nil {
		h.failFor(ctx, s, events.MediaErrRecordingFailed, "StopRecording: the session is not recording")
		return
	}
	close(r.ch)
	<-r.done // not under pubMu: a failing writer takes it to report
	h.publishFor(ctx, s, h.recordingOutcome(s, r))
}

// detachRecording takes the recording off the session, or returns nil.
// The caller closes its channel and waits for its writer.
func (s *session) detachRecording() *recorder {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec
	s.rec = nil
	return r
}

// recordingOutcome is what a closed recording reports.
func (h *Hub) recordingOutcome(s *session, r *recorder) events.Event {
	if r.err != nil {
		return h.mediaErrorEvent(s.id, events.MediaErrRecordingFailed, "recording %s: %v", r.path, r.err)
	}
	return &events.RecordingStopped{SessionRef: events.SessionRef{SessionID: s.id}, FilePath: r.path,
		DurationMS: r.w.Duration().Milliseconds()}
}

// recordFrame queues tick n to the recording without ever waiting: when
// the writer is a second behind, the frame is dropped and counted, and
// written as silence later. Call with mu held, on the clock goroutine.
func (s *session) recordFrame(n uint64, sentAudio bool) {
	r := s.rec
	var f recFrame
	f.gap = r.pending
	if s.clk.rxTick == n {
		f.l = s.frames.rx
	}
	if sentAudio {
		f.r = s.frames.out
	}
	select {
	case r.ch <- f:
		r.pending = 0
	default:
		r.pending++
		s.cnt.recDropped++
	}
}

// writeRecording is a recording's writer goroutine. It ends when ch is
// closed, having closed the file. A write failure closes the file and,
// unless the recording was detached meanwhile (its detacher then reports
// the error), reports MediaError{recording_failed} itself.
func (h *Hub) writeRecording(s *session, r *recorder) {
	defer close(r.done)
	var silence [audio.FrameSamples]int16
	for f := range r.ch {
		if r.err != nil {
			continue
		}
		var err error
		for range f.gap {
			if err = r.w.Write(silence[:], silence[:]); err != nil {
				break
			}
		}
		if err == nil {
			err = r.w.Write(f.l[:], f.r[:])
		}
		if err != nil {
			r.err = err
			_ = r.w.Close()
			h.recordingFailed(s, r)
		}
	}
	if r.err == nil {
		if err := r.w.Close(); err != nil {
			r.err = err
		}
	}
}

// recordingFailed detaches a recording whose writer failed and reports
// it, unless someone else detached it first.
func (h *Hub) recordingFailed(s *session, r *recorder) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	mine := s.rec == r
	if mine {
		s.rec = nil
		close(r.ch)
	}
	s.mu.Unlock()
	if !mine {
		return
	}
	h.log.Warn("recording failed", "session_id", s.id, "file_path", r.path, "error", r.err)
	h.publish(h.ctx, h.mediaErrorEvent(s.id, events.MediaErrRecordingFailed, "recording %s: %v", r.path, r.err))
}

var _ wavSink = (*audio.WAVWriter)(nil)
