package media

import "sync"

// The clip cache's bounds: how many decoded files it keeps, and how many
// samples in all (64 Mi samples = 128 MiB, 2.3 hours of 8 kHz audio).
const (
	clipCacheEntries = 32
	clipCacheSamples = 64 << 20
)

// clipKey identifies one version of a file of the media dir: a file
// rewritten in place gets a new modification time or size, hence a new
// entry.
type clipKey struct {
	name  string // cleaned, relative to the media dir
	mtime int64
	size  int64
}

// clipEntry is a decoded file, or one being decoded: done closes when
// samples and err are set.
type clipEntry struct {
	key     clipKey
	done    chan struct{}
	samples []int16
	err     error
}

// clipCache keeps the most recently played files decoded, so that a
// thousand calls playing the same prompt decode it once: the first caller
// decodes, the others wait for it. Failures are not kept (they may be
// passing, such as a read error). The samples are shared and never
// written.
type clipCache struct {
	maxEntries, maxSamples int

	mu      sync.Mutex
	entries []*clipEntry // most recent first
	samples int          // held by the completed entries
	loads   int          // decodes run, for tests
}

func newClipCache(maxEntries, maxSamples int) *clipCache {
	return &clipCache{maxEntries: maxEntries, maxSamples: maxSamples}
}

// get returns the samples of key, calling load once for all concurrent
// callers when they are not cached.
func (c *clipCache) get(key clipKey, load func() ([]int16, error)) ([]int16, error) {
	c.mu.Lock()
	for i, e := range c.entries {
		if e.key == key {
			copy(c.entries[1:i+1], c.entries[:i])
			c.entries[0] = e
			c.mu.Unlock()
			<-e.done
			return e.samples, e.err
		}
	}
	e := &clipEntry{key: key, done: make(chan struct{})}
	c.entries = append([]*clipEntry{e}, c.entries...)
	c.loads++
	c.mu.Unlock()

	e.samples, e.err = load()
	close(e.done)

	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil || len(e.samples) > c.maxSamples {
		c.remove(e)
		return e.samples, e.err
	}
	c.samples += len(e.samples)
	// Evict from the least recent end; entries still loading are skipped
	// (their waiters hold them) and trimmed by their own loader.
	for i := len(c.entries) - 1; i > 0 && (len(c.entries) > c.maxEntries || c.samples > c.maxSamples); i-- {
		old := c.entries[i]
		select {
		case <-old.done:
			c.remove(old)
		default:
		}
	}
	return e.samples, nil
}

// loadCount returns how many decodes ran.
func (c *clipCache) loadCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}

// remove drops e from the list. Call with mu held.
func (c *clipCache) remove(e *clipEntry) {
	for i, x := range c.entries {
		if x == e {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			select {
			case <-e.done:
				if e.err == nil && len(e.samples) <= c.maxSamples {
					c.samples -= len(e.samples)
				}
			default:
			}
			return
		}
	}
}
