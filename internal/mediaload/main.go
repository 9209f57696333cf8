// Command mediaload measures the media target of DESIGN.md §9 and issue 4:
// N concurrent calls with 20 ms PCMU both ways through the bus, no packet
// lost inside callbus, send-clock jitter p99 ≤ 2 ms, and the CPU each call
// costs.
//
// It runs callbus's real media and rtp hubs on a real bus.Memory in this
// process, and the far ends of the N calls in a child process (this same
// binary with -peer), so that the CPU figures of the two sides are apart.
// Each call is set up the way the session layer does it — StartMediaStream
// with the far end's SDP offer — and then carries 20 ms PCMU packets both
// ways for -duration. Loopback only.
//
//	go run ./internal/mediaload -calls 1000 -duration 20s
//
// The report:
//   - lost inside callbus: packets the rtp layer accepted that never reached
//     media (RtpPacketReceived), and SendRtpPacket events that rtp did not
//     send — both must be 0;
//   - lost on loopback: what the kernel dropped between the two processes
//     (socket buffers), outside callbus;
//   - pacing: the lateness of media's 20 ms clock ticks (p50/p99/max) and
//     the inter-arrival gaps at the far ends (deviation from 20 ms);
//   - CPU: user+system time of the callbus side per call, and per 1000 calls
//     as a share of one core.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/media"
	"github.com/callbus/callbus/callcore/rtp"
)

func main() {
	calls := flag.Int("calls", 1000, "concurrent calls")
	duration := flag.Duration("duration", 20*time.Second, "how long every call carries audio while measured")
	warmup := flag.Duration("warmup", 2*time.Second, "audio before measuring starts")
	lo := flag.Int("port-lo", 30000, "first RTP port of callbus's range")
	peer := flag.Bool("peer", false, "run as the far ends (started by mediaload itself)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the callbus side's measured window to this file")
	flag.Parse()
	var err error
	if *peer {
		err = runPeer(*calls)
	} else {
		err = run(*calls, *duration, *warmup, *lo, *cpuprofile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mediaload:", err)
		os.Exit(1)
	}
}

// peerProcs is the far ends' GOMAXPROCS: one core's worth, so that they
// leave the other to callbus as phones on other machines would.
const peerProcs = "1"

// peerHello is what the peer prints first: the ports of its N sockets.
type peerHello struct {
	Ports []int `json:"ports"`
}

// peerStart is what the parent answers: callbus's port for each call, and
// how long to send.
type peerStart struct {
	Ports    []int         `json:"ports"`
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
}

// peerResult is what the peer prints at the end: packets over the whole
// run, gaps and CPU over the measured window.
type peerResult struct {
	Sent      uint64        `json:"sent"`
	Received  uint64        `json:"received"`
	GapP50    time.Duration `json:"gap_dev_p50"`
	GapP99    time.Duration `json:"gap_dev_p99"`
	GapMax    time.Duration `json:"gap_dev_max"`
	CPU       time.Duration `json:"cpu"`
	LateTicks uint64        `json:"late_ticks"`
}

func run(n int, duration, warmup time.Duration, lo int, cpuprofile string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The far ends stand for phones on other machines: niced, so that on
	// this one they take the CPU callbus leaves rather than compete with
	// its sender clock.
	child := exec.Command("nice", "-n", "10", self, "-peer", "-calls", fmt.Sprint(n))
	child.Env = append(os.Environ(), "GOMAXPROCS="+peerProcs)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start peer: %w", err)
	}
	defer child.Process.Kill() //nolint:errcheck // best effort on an error path
	out := json.NewDecoder(bufio.NewReader(stdout))
	var hello peerHello
	if err := out.Decode(&hello); err != nil {
		return fmt.Errorf("peer hello: %w", err)
	}

	b, err := bus.New(bus.Config{Node: "load", Logger: log})
	if err != nil {
		return err
	}
	hi := lo + 4*n + 10
	rh, err := rtp.New(rtp.Config{Host: netip.MustParseAddr("127.0.0.1"), Ports: [2]int{lo, hi}}, b, log)
	if err != nil {
		return err
	}
	mh, err := media.New(media.Config{}, b, log)
	if err != nil {
		return err
	}
	if err := rh.Open(ctx); err != nil {
		return err
	}
	if err := mh.Open(ctx); err != nil {
		return err
	}

	// Collect MediaStreamStarted: the port callbus advertises per call.
	var mu sync.Mutex
	ports := map[string]int{}
	started := make(chan struct{}, n)
	sub, err := b.Subscribe(bus.Subscriber{Name: "mediaload", Channels: []string{events.ChannelMediaToSession},
		Handle: func(_ context.Context, _ events.Envelope, ev events.Event) error {
			switch ev := ev.(type) {
			case *events.MediaStreamStarted:
				mu.Lock()
				ports[ev.SessionID] = ev.LocalPort
				mu.Unlock()
				started <- struct{}{}
			case *events.MediaError:
				return fmt.Errorf("media error for %s: %s (%s)", ev.SessionID, ev.Error, ev.ErrorCode)
			}
			return nil
		}})
	if err != nil {
		return err
	}
	ids := make([]string, n)
	t0 := time.Now()
	for i := range n {
		ids[i] = fmt.Sprintf("load.%05d", i)
		err := b.Publish(ctx, &events.StartMediaStream{SessionRef: events.SessionRef{SessionID: ids[i]},
			RemoteSDP:   offer(hello.Ports[i]),
			MediaConfig: events.MediaConfig{Codecs: []string{"PCMU"}}})
		if err != nil {
			return err
		}
	}
	for range n {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			return errors.New("media streams did not all start within 30s")
		}
	}
	fmt.Printf("set up %d media streams in %v\n", n, time.Since(t0).Round(time.Millisecond))

	start := peerStart{Ports: make([]int, n), Warmup: warmup, Duration: duration}
	for i, id := range ids {
		start.Ports[i] = ports[id]
	}
	if err := json.NewEncoder(stdin).Encode(start); err != nil {
		return err
	}

	// Measure CPU and pacing from the end of the warm-up to the end of the
	// window; count packets over the whole run.
	time.Sleep(warmup)
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0 := cpuTime()
	time.Sleep(duration)
	cpu1 := cpuTime()
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	pace := mh.Pacing()

	// The far ends stop sending at the end of the window. Hold every
	// call so callbus stops sending too, let in-flight packets settle,
	// then compare what rtp accepted with what media handled and what
	// media sent with what rtp sent: the bus in between must lose nothing.
	time.Sleep(100 * time.Millisecond)
	for _, id := range ids {
		if err := b.Publish(ctx, &events.HoldMedia{SessionRef: events.SessionRef{SessionID: id}}); err != nil {
			return err
		}
	}
	settled := snapshot(rh, mh, ids)
	for range 50 { // until the counters stop moving: the bus has drained
		time.Sleep(100 * time.Millisecond)
		now := snapshot(rh, mh, ids)
		if now == settled {
			break
		}
		settled = now
	}
	stdin.Close() // the far ends report and exit
	var res peerResult
	if err := out.Decode(&res); err != nil {
		return fmt.Errorf("peer result: %w", err)
	}

	_ = sub.Unsubscribe(ctx)
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = mh.Close(closeCtx)
	_ = rh.Close(closeCtx)
	_ = b.Close(closeCtx)
	_ = child.Wait()

	secs := duration.Seconds()
	cbCPU := cpu1 - cpu0
	fmt.Printf("calls                         %d for %v (after %v warm-up), 20 ms PCMU both ways\n", n, duration, warmup)
	fmt.Printf("far ends → callbus            far ends sent %d, rtp accepted %d, media handled %d\n",
		res.Sent, settled.rtpRecv, settled.mediaRecv)
	fmt.Printf("callbus → far ends            media sent %d, rtp sent %d, far ends received %d\n",
		settled.mediaSent, settled.rtpSent, res.Received)
	fmt.Printf("refused by rtp                malformed %d, foreign source %d, foreign SSRC %d, bad seq %d\n",
		settled.malformed, settled.foreignSource, settled.foreignSSRC, settled.badSeq)
	fmt.Printf("lost inside callbus           rtp→media %d, media→rtp %d\n",
		int64(settled.rtpRecv)-int64(settled.mediaRecv), int64(settled.mediaSent)-int64(settled.rtpSent))
	fmt.Printf("lost on loopback (kernel)     to callbus %d, to far ends %d\n",
		int64(res.Sent)-int64(settled.rtpRecv), int64(settled.rtpSent)-int64(res.Received))
	fmt.Printf("media clock ticks             %d, skipped %d; lateness p50 %v p99 %v max %v\n",
		pace.Ticks, pace.Skipped, pace.P50, pace.P99, pace.Max)
	fmt.Printf("far-end arrival gap deviation p50 %v p99 %v max %v\n", res.GapP50, res.GapP99, res.GapMax)
	fmt.Printf("CPU callbus side              %v in %v = %.1f%% of one core; %.1f µs CPU per call per second; %.1f%% of a core per 1000 calls\n",
		cbCPU.Round(time.Millisecond), duration, 100*cbCPU.Seconds()/secs,
		1e6*cbCPU.Seconds()/secs/float64(n), 100*cbCPU.Seconds()/secs/float64(n)*1000)
	fmt.Printf("CPU far ends (other process)  %v = %.1f%% of one core\n", res.CPU.Round(time.Millisecond), 100*res.CPU.Seconds()/secs)
	return nil
}

type counters struct {
	rtpRecv, rtpSent, mediaRecv, mediaSent uint64
	// what rtp read and refused, by reason
	malformed, foreignSource, foreignSSRC, badSeq uint64
}

func snapshot(rh *rtp.Hub, mh *media.Hub, ids []string) counters {
	var c counters
	for _, id := range ids {
		if s, ok := rh.Stream(id); ok {
			c.rtpRecv += s.PacketsReceived
			c.rtpSent += s.PacketsSent
			c.malformed += s.Malformed
			c.foreignSource += s.ForeignSource
			c.foreignSSRC += s.ForeignSSRC
			c.badSeq += s.BadSeq
		}
		if s, ok := mh.Stream(id); ok {
			c.mediaRecv += s.PacketsReceived
			c.mediaSent += s.PacketsSent
		}
	}
	return c
}

// offer is the far end's SDP offer: PCMU and telephone-event on port.
func offer(port int) string {
	return "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		fmt.Sprintf("m=audio %d RTP/AVP 0 101\r\n", port) +
		"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runPeer is the far ends: n sockets, one paced sender for all of them,
// one reader per socket measuring inter-arrival gaps.
func runPeer(n int) error {
	conns := make([]*net.UDPConn, n)
	hello := peerHello{Ports: make([]int, n)}
	for i := range n {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		_ = c.SetReadBuffer(1 << 20)
		conns[i] = c
		hello.Ports[i] = c.LocalAddr().(*net.UDPAddr).Port
	}
	if err := json.NewEncoder(os.Stdout).Encode(hello); err != nil {
		return err
	}
	var start peerStart
	if err := json.NewDecoder(os.Stdin).Decode(&start); err != nil {
		return err
	}
	dests := make([]netip.AddrPort, n)
	for i, p := range start.Ports {
		dests[i] = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))
	}

	pkt0 := make([]byte, 12+160) // the size of a 20 ms PCMU packet
	var measuring atomic.Bool
	var received atomic.Uint64
	gaps := make([][]time.Duration, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			var last time.Time
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if n != len(pkt0) || buf[1]&0x7f != 0 {
					continue // not callbus's PCMU: an RTCP report for a neighbour's port
				}
				now := time.Now()
				received.Add(1)
				if measuring.Load() {
					if !last.IsZero() {
						d := now.Sub(last) - 20*time.Millisecond
						if d < 0 {
							d = -d
						}
						gaps[i] = append(gaps[i], d)
					}
				}
				last = now
			}
		}()
	}

	// One sender: a PCMU packet (12-byte header + 160 bytes) per call per
	// 20 ms, on absolute deadlines.
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // V=2, PT 0
	for i := 12; i < len(pkt); i++ {
		pkt[i] = 0xFF
	}
	seqs := make([]uint16, n)
	var sent uint64
	var late uint64
	t0 := time.Now()
	end := t0.Add(start.Warmup + start.Duration)
	measureFrom := t0.Add(start.Warmup)
	cpu0 := time.Duration(0)
	for tick := 0; ; tick++ {
		next := t0.Add(time.Duration(tick) * 20 * time.Millisecond)
		if next.After(end) {
			break
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else if d < -20*time.Millisecond {
			late++
		}
		if !measuring.Load() && !time.Now().Before(measureFrom) {
			measuring.Store(true)
			cpu0 = cpuTime()
		}
		for i, c := range conns {
			seqs[i]++
			pkt[2], pkt[3] = byte(seqs[i]>>8), byte(seqs[i])
			ts := uint32(tick * 160)
			pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
			pkt[8], pkt[9], pkt[10], pkt[11] = 0x10, 0x20, byte(i>>8), byte(i)
			if _, err := c.WriteToUDPAddrPort(pkt, dests[i]); err == nil {
				sent++
			}
		}
	}
	measuring.Store(false)
	cpu := cpuTime() - cpu0
	// Keep receiving until the parent has stopped callbus's sending and
	// closes our stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	var all []time.Duration
	for _, g := range gaps {
		all = append(all, g...)
	}
	slices.Sort(all)
	res := peerResult{Sent: sent, Received: received.Load(), CPU: cpu, LateTicks: late}
	if len(all) > 0 {
		res.GapP50 = all[len(all)/2]
		res.GapP99 = all[len(all)*99/100]
		res.GapMax = all[len(all)-1]
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
