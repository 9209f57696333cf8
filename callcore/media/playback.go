package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/callbus/callbus/callcore/audio"
	"github.com/callbus/callbus/callcore/events"
)

// fetchTimeout bounds the fetch of a URL to play, headers and body.
const fetchTimeout = 10 * time.Second

// maxFetchBytes bounds a fetched WAV: the most audio ReadWAV accepts plus
// room for its header chunks.
const maxFetchBytes = audio.MaxWAVBytes + 1<<20

// playAudio starts playing a file of MediaDir or a URL, replacing the
// playback in progress (which is reported finished first). A PlayAudio
// that cannot play is answered MediaError{playback_failed}, which stands
// for its AudioPlaybackFinished.
func (h *Hub) playAudio(ctx context.Context, cause events.ID, ev *events.PlayAudio) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.fail(ctx, ev.SessionID, events.MediaErrPlaybackFailed, "PlayAudio %q: no media stream for the session", ev.FilePath)
		return
	}
	var samples []int16
	var name string
	var err error
	if ev.LoopCount < 0 {
		name, err = ev.FilePath, fmt.Errorf("loop_count %d is negative", ev.LoopCount)
	} else if s.started() {
		// Decoding (or fetching) happens outside the session's locks: the
		// clock goes on meanwhile.
		samples, name, err = h.loadClip(ctx, ev.FilePath)
	}

	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	old := s.play
	s.play = nil
	ph := s.phase
	if err == nil && ph == phaseStarted {
		s.play = &playback{name: name, samples: samples, plays: max(ev.LoopCount, 1), cause: cause}
	}
	s.mu.Unlock()
	if old != nil {
		h.publish(ctx, &events.AudioPlaybackFinished{SessionRef: ev.SessionRef})
	}
	switch {
	case err != nil:
		h.publish(ctx, h.mediaErrorEvent(s.id, events.MediaErrPlaybackFailed, "PlayAudio %q: %v", name, err))
	case ph != phaseStarted:
		h.publish(ctx, h.mediaErrorEvent(s.id, events.MediaErrPlaybackFailed, "PlayAudio %q: the media stream is %s",
			ev.FilePath, ph))
	default:
		h.log.Debug("playback started", "session_id", s.id, "file", name, "samples", len(samples),
			"loop_count", ev.LoopCount)
	}
}

// stopAudio stops the playback in progress: AudioPlaybackFinished. With
// none (it just finished: its AudioPlaybackFinished is out) nothing is
// published, since each PlayAudio has exactly one outcome.
func (h *Hub) stopAudio(ctx context.Context, ev *events.StopAudio) {
	s := h.lookup(ev.SessionID)
	if s == nil {
		h.log.Debug("StopAudio for an unknown session", "session_id", ev.SessionID)
		return
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	old := s.play
	s.play = nil
	s.mu.Unlock()
	if old != nil {
		h.publish(ctx, &events.AudioPlaybackFinished{SessionRef: ev.SessionRef})
	}
}

// started reports whether the stream is started.
func (s *session) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase == phaseStarted
}

// loadClip returns the decoded 8 kHz samples of what PlayAudio names, the
// name to report it by (relative to MediaDir; a URL without its query),
// and an error saying why it cannot be played. Files are read through an
// os.Root on MediaDir, so neither ".." nor a symbolic link leads outside
// it, and decoded once per path, modification time and size (clipCache).
func (h *Hub) loadClip(ctx context.Context, path string) ([]int16, string, error) {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return h.fetchClip(ctx, path)
	}
	if path == "" {
		return nil, path, errors.New("no file named")
	}
	root, err := h.mediaRoot()
	if err != nil {
		return nil, path, err
	}
	name := path
	if filepath.IsAbs(path) {
		rel, err := filepath.Rel(h.cfg.MediaDir, filepath.Clean(path))
		if err != nil || !filepath.IsLocal(rel) {
			return nil, path, errors.New("outside the media dir")
		}
		name = rel
	}
	if !filepath.IsLocal(name) {
		return nil, path, errors.New("outside the media dir")
	}
	name = filepath.Clean(name)
	f, err := root.Open(name)
	if err != nil {
		return nil, name, openReason(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, name, openReason(err)
	}
	if fi.IsDir() {
		return nil, name, errors.New("is a directory")
	}
	key := clipKey{name: name, mtime: fi.ModTime().UnixNano(), size: fi.Size()}
	samples, err := h.clips.get(key, func() ([]int16, error) {
		samples, _, err := audio.ReadWAV(bufio.NewReaderSize(f, 64<<10))
		return samples, err
	})
	if err != nil {
		return nil, name, wavReason(err)
	}
	return samples, name, nil
}

// openReason says why a file of the media dir did not open, without the
// server's paths.
func openReason(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file in the media dir")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if strings.Contains(pe.Err.Error(), "escapes") {
			return errors.New("outside the media dir (through a symbolic link or ..)")
		}
		return pe.Err
	}
	return err
}

// wavReason says why audio could not be decoded.
func wavReason(err error) error {
	switch {
	case errors.Is(err, audio.ErrNotWAV):
		return errors.New("not a WAV file")
	case errors.Is(err, audio.ErrUnsupportedWAV), errors.Is(err, audio.ErrMalformedWAV):
		return err
	}
	return fmt.Errorf("read: %w", err)
}

// fetchClip fetches and decodes a WAV from an http(s) URL: one GET of at
// most fetchTimeout and maxFetchBytes, status 200, decoded like a file.
// URLs are not cached (the server may change what they return).
func (h *Hub) fetchClip(ctx context.Context, raw string) ([]int16, string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, raw, errors.New("not a valid URL")
	}
	name := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, name, errors.New("not a valid URL")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the name already
		}
		return nil, name, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, name, fmt.Errorf("fetch: HTTP %s", resp.Status)
	}
	if resp.ContentLength > maxFetchBytes {
		return nil, name, fmt.Errorf("fetch: %d bytes, over the limit of %d", resp.ContentLength, maxFetchBytes)
	}
	// ReadWAV stops at the data chunk's end and refuses more audio than
	// MaxWAVBytes; the limit only keeps a lying header from reading on.
	samples, _, err := audio.ReadWAV(bufio.NewReaderSize(io.LimitReader(resp.Body, maxFetchBytes), 64<<10))
	if err != nil {
		return nil, name, wavReason(err)
	}
	return samples, name, nil
}
