package httpapi

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/store"
)

// Page sizes of the lists.
const (
	DefaultPageSize  = 100
	MaxPageSize      = 500
	DefaultEventPage = 1000
	MaxEventPage     = 5000
)

// queryInt parses the query parameter name: def when absent, else an
// integer in lo..hi, else validation_failed naming it.
func queryInt(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, "%s %q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// queryUint parses the query parameter name: 0 when absent, else a
// non-negative integer, else validation_failed naming it.
func queryUint(v, name string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, invalid(name, "%s %q: want a non-negative integer", name, v)
	}
	return n, nil
}

// Recording is the recording resource.
type Recording struct {
	ID         string    `json:"id"`
	CallID     string    `json:"call_id"`
	Format     string    `json:"format"`
	DurationMS int64     `json:"duration_ms"`
	CreatedAt  time.Time `json:"created_at"`
	// AudioURL is where the audio is served (GET, Range supported).
	AudioURL string `json:"audio_url"`
}

func recordingOf(r store.Recording) Recording {
	return Recording{ID: r.ID, CallID: r.CallID, Format: r.Format, DurationMS: r.DurationMS,
		CreatedAt: r.CreatedAt.UTC(), AudioURL: "/v1/recordings/" + r.ID + "/audio"}
}

// RecordingList is the answer of GET /v1/recordings.
type RecordingList struct {
	Recordings []Recording `json:"recordings"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// listRecordings serves GET /v1/recordings?limit=&cursor=.
func (a *api) listRecordings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), "limit", DefaultPageSize, 1, MaxPageSize)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	recs, next, err := a.store.Recordings(r.Context(), q.Get("cursor"), limit)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := RecordingList{Recordings: make([]Recording, len(recs)), NextCursor: next}
	for i, rec := range recs {
		out.Recordings[i] = recordingOf(rec)
	}
	writeJSON(w, http.StatusOK, out)
}

// getRecording serves GET /v1/recordings/{id}.
func (a *api) getRecording(w http.ResponseWriter, r *http.Request) {
	rec, err := a.recording(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, recordingOf(rec))
}

func (a *api) recording(r *http.Request) (store.Recording, error) {
	id, err := pathID(r)
	if err != nil {
		return store.Recording{}, err
	}
	return a.store.Recording(r.Context(), id)
}

// recordingAudio serves GET /v1/recordings/{id}/audio: the WAV file, with
// Range, If-Modified-Since and HEAD as http.ServeContent answers them.
func (a *api) recordingAudio(w http.ResponseWriter, r *http.Request) {
	rec, err := a.recording(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	f, err := os.Open(rec.FilePath)
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, r, a.log, callcore.Errorf(callcore.CodeNotFound, "recording %s has no audio file", rec.ID))
		return
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rec.ID+`.wav"`)
	http.ServeContent(&problemOnError{ResponseWriter: w}, r, rec.ID+".wav", st.ModTime(), f)
}

// problemOnError turns the plain-text errors of http.ServeContent (416 for
// a range outside the file) into problem+json; §5 has no code of its own
// for them, so they carry bad_request.
type problemOnError struct {
	http.ResponseWriter
	failed bool
}

func (p *problemOnError) WriteHeader(status int) {
	if status < 400 {
		p.ResponseWriter.WriteHeader(status)
		return
	}
	p.failed = true
	h := p.Header()
	h.Del("Content-Length")
	h.Del("Content-Disposition")
	detail := http.StatusText(status)
	if status == http.StatusRequestedRangeNotSatisfiable {
		detail += ": the Range asks for bytes the recording does not have"
	}
	writeProblem(p.ResponseWriter, status, callcore.CodeBadRequest, detail)
}

func (p *problemOnError) Write(b []byte) (int, error) {
	if p.failed {
		return len(b), nil // ServeContent's own text; the problem is written
	}
	return p.ResponseWriter.Write(b)
}

// deleteRecording serves DELETE /v1/recordings/{id}: the row, then the
// file. A file already gone is not an error.
func (a *api) deleteRecording(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	rec, err := a.store.DeleteRecording(r.Context(), id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := os.Remove(rec.FilePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
