// Command bareuas is the baseline of scripts/sip-load.sh: a bare sipgo
// server that answers every INVITE with 200 and an SDP answer and every BYE
// with 200, with no dialogs, media or bus. callbus's calls/s under sipp's
// uac scenario are reported as a ratio of this server's, measured in the
// same run (DESIGN.md §9: at least half).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5080", "UDP listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "bareuas:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sip.SetDefaultLogger(quiet)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("bareuas"))
	if err != nil {
		return err
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		return err
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(conn.LocalAddr().String())
	sdp := []byte("v=0\r\no=bareuas 1 1 IN IP4 " + host + "\r\ns=-\r\nc=IN IP4 " + host +
		"\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")
	contact := sip.ContactHeader{Address: sip.Uri{Host: host, Port: atoi(port)}}

	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", sdp)
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.AppendHeader(&contact)
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); conn.Close() }()
	fmt.Println("bareuas listening on", conn.LocalAddr())
	if err := srv.ServeUDP(conn); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
