package rtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// The pool's sentinel errors.
var (
	// ErrNoPort means no free pair of ports could be bound.
	ErrNoPort = errors.New("no free RTP port pair")
	// ErrPortOutsideRange means an asked-for port is odd or its pair lies
	// outside the configured range.
	ErrPortOutsideRange = errors.New("RTP port outside the configured range")
	// ErrPortBusy means an asked-for pair is already in use.
	ErrPortBusy = errors.New("RTP port pair in use")
)

// pair is one allocation: an even RTP port, the RTCP port above it, and
// both bound sockets.
type pair struct {
	port      int
	rtp, rtcp *net.UDPConn
}

// close closes both sockets.
func (p *pair) close() {
	p.rtp.Close()
	p.rtcp.Close()
}

// portPool hands out pairs of UDP ports within a range: an even RTP port
// and the RTCP port above it. It binds both sockets as it allocates, so a
// port that another process holds is skipped rather than handed out.
type portPool struct {
	host  netip.Addr // invalid: every interface
	first int        // the first even port of the range
	mu    sync.Mutex
	used  []bool // by pair index
	next  int    // round-robin cursor, a pair index
	inUse int
}

// newPortPool returns a pool over the pairs (p, p+1), p even, that lie
// within [lo, hi]. It binds nothing.
func newPortPool(host netip.Addr, lo, hi int) (*portPool, error) {
	first := lo + lo%2
	pairs := (hi - first + 1) / 2
	if lo < 1 || hi > 65535 || pairs < 1 {
		return nil, fmt.Errorf("port range %d-%d holds no even/odd pair within 1-65535", lo, hi)
	}
	return &portPool{host: host, first: first, used: make([]bool, pairs)}, nil
}

// size returns how many pairs the range holds.
func (p *portPool) size() int { return len(p.used) }

// allocate binds the next free pair, round-robin from the last one
// allocated. It returns an error wrapping ErrNoPort when every pair is in
// use or cannot be bound.
func (p *portPool) allocate() (pair, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lastErr error
	for range len(p.used) {
		i := p.next
		p.next = (p.next + 1) % len(p.used)
		if p.used[i] {
			continue
		}
		pr, err := p.bind(p.first + 2*i)
		if err != nil {
			lastErr = err // held by another process: try the next pair
			continue
		}
		p.used[i] = true
		p.inUse++
		return pr, nil
	}
	if lastErr != nil {
		return pair{}, fmt.Errorf("%w in %d-%d (%d in use here; last bind error: %v)",
			ErrNoPort, p.first, p.first+2*len(p.used)-1, p.inUse, lastErr)
	}
	return pair{}, fmt.Errorf("%w in %d-%d (all %d in use)",
		ErrNoPort, p.first, p.first+2*len(p.used)-1, p.inUse)
}

// reserve binds the pair of port. It returns ErrPortOutsideRange for an
// odd port or one outside the range, ErrPortBusy when the pool has handed
// it out, and the bind error when another process holds it.
func (p *portPool) reserve(port int) (pair, error) {
	i := (port - p.first) / 2
	if port%2 != 0 || port < p.first || i >= len(p.used) {
		return pair{}, fmt.Errorf("%w: %d (range %d-%d, even ports)",
			ErrPortOutsideRange, port, p.first, p.first+2*len(p.used)-1)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[i] {
		return pair{}, fmt.Errorf("%w: %d", ErrPortBusy, port)
	}
	pr, err := p.bind(port)
	if err != nil {
		return pair{}, err
	}
	p.used[i] = true
	p.inUse++
	return pr, nil
}

// release returns the pair of port to the pool. Its sockets must be
// closed already. Releasing a free pair does nothing.
func (p *portPool) release(port int) {
	i := (port - p.first) / 2
	if port%2 != 0 || port < p.first || i >= len(p.used) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[i] {
		p.used[i] = false
		p.inUse--
	}
}

// busy returns how many pairs are handed out.
func (p *portPool) busy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}

// bind binds the RTP socket on port and the RTCP socket on port+1.
func (p *portPool) bind(port int) (pair, error) {
	r, err := net.ListenUDP("udp", p.addr(port))
	if err != nil {
		return pair{}, err
	}
	c, err := net.ListenUDP("udp", p.addr(port+1))
	if err != nil {
		r.Close()
		return pair{}, err
	}
	return pair{port: port, rtp: r, rtcp: c}, nil
}

func (p *portPool) addr(port int) *net.UDPAddr {
	if !p.host.IsValid() {
		return &net.UDPAddr{Port: port}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.host, uint16(port)))
}
