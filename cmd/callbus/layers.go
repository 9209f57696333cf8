package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/callbus/callbus/callcore/bus"
	"github.com/callbus/callbus/callcore/dialog"
	"github.com/callbus/callbus/callcore/media"
	"github.com/callbus/callbus/callcore/rtp"
	"github.com/callbus/callbus/callcore/session"
	"github.com/callbus/callbus/callcore/transport"
)

// layers are the five hubs of the stack. Only main sees them all: they
// meet each other on the bus alone.
type layers struct {
	rtp       *rtp.Hub
	media     *media.Hub
	sessions  *session.Hub
	transport *transport.Hub
	dialogs   *dialog.Hub
	// opened holds what has been opened, in order; closeLayers closes it
	// backwards.
	opened []interface{ Close(context.Context) error }
}

// openLayers starts the stack from the bottom up, so that every layer is
// subscribed before the transport lets the first SIP message in. The
// dialog learns the transport's bound address (port 0 is allowed) for its
// Contact headers.
func (m *Main) openLayers(ctx context.Context) error {
	cfg := m.Config
	log := m.logger
	sipHost, _, err := net.SplitHostPort(cfg.SIPAddr)
	if err != nil {
		return fmt.Errorf("CALLBUS_SIP_ADDR: %w", err)
	}
	host, err := netip.ParseAddr(sipHost)
	if err != nil {
		host = netip.IPv4Unspecified()
	}
	advertised := cfg.ExternalIP
	if !advertised.IsValid() {
		advertised = host
		if host.IsUnspecified() {
			advertised = netip.MustParseAddr("127.0.0.1")
			log.Warn("SIP listens on every interface but CALLBUS_EXTERNAL_IP is unset: SDP advertises 127.0.0.1, which peers on other hosts cannot reach",
				"sip_addr", cfg.SIPAddr)
		}
	}
	var b bus.Bus = m.bus

	if m.layers.rtp, err = rtp.New(rtp.Config{Host: host, Ports: [2]int{cfg.RTPPorts.Lo, cfg.RTPPorts.Hi}}, b, log); err != nil {
		return err
	}
	if err := m.layers.rtp.Open(ctx); err != nil {
		return fmt.Errorf("rtp: %w", err)
	}
	m.layers.opened = append(m.layers.opened, m.layers.rtp)
	if m.layers.media, err = media.New(media.Config{ExternalIP: advertised, MediaDir: cfg.MediaDir}, b, log); err != nil {
		return err
	}
	if err := m.layers.media.Open(ctx); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	m.layers.opened = append(m.layers.opened, m.layers.media)

	tcfg := transport.Config{ExternalHost: cfg.ExternalIP.String()}
	if !cfg.ExternalIP.IsValid() {
		tcfg.ExternalHost = ""
	}
	if slices.Contains(cfg.SIPTransports, "udp") {
		tcfg.UDPAddr = cfg.SIPAddr
	}
	if slices.Contains(cfg.SIPTransports, "tcp") {
		tcfg.TCPAddr = cfg.SIPAddr
	}
	if m.layers.transport, err = transport.New(tcfg, b, log); err != nil {
		return err
	}

	if m.layers.sessions, err = session.New(session.Config{
		Node:         cfg.NodeID,
		Inbound:      session.Policy(cfg.Inbound),
		RingTimeout:  cfg.RingTimeout,
		MaxCalls:     cfg.MaxCalls,
		RecordingDir: filepath.Join(cfg.DataDir, "recordings"),
	}, b, log); err != nil {
		return err
	}
	if err := m.layers.sessions.Open(ctx); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	m.layers.opened = append(m.layers.opened, m.layers.sessions)

	// The transport binds first, so that the dialog's Contact names the
	// port taken; the dialog subscribes before anything is published, as
	// the transport publishes only what it receives from peers who learn
	// our address from us.
	if err := m.layers.transport.Open(ctx); err != nil {
		return fmt.Errorf("sip transport: %w", err)
	}
	m.layers.opened = append(m.layers.opened, m.layers.transport)
	network := "udp"
	if tcfg.UDPAddr == "" {
		network = "tcp"
	}
	if m.layers.dialogs, err = dialog.New(dialog.Config{
		ContactAddr: m.layers.transport.AdvertisedAddr(network),
		Transport:   network,
	}, b, log); err != nil {
		return err
	}
	if err := m.layers.dialogs.Open(ctx); err != nil {
		return fmt.Errorf("dialog: %w", err)
	}
	m.layers.opened = append(m.layers.opened, m.layers.dialogs)
	m.logger.Info("sip listening", "udp", m.layers.transport.Addr("udp"), "tcp", m.layers.transport.Addr("tcp"))
	return nil
}

// closeLayers stops the stack in the reverse order of opening: first the
// dialogs and the transport, so no new call comes in, then each layer
// below drains what the bus holds for it. Every layer shares ctx's
// deadline; one that it cuts short is logged, and its error returned.
func (m *Main) closeLayers(ctx context.Context) error {
	var errs []error
	for i := len(m.layers.opened) - 1; i >= 0; i-- {
		if err := m.layers.opened[i].Close(ctx); err != nil {
			m.logger.Warn("layer close", "err", err)
			errs = append(errs, err)
		}
	}
	m.layers.opened = nil
	return errors.Join(errs...)
}

// SIPAddr returns the address the SIP listener of network ("udp", "tcp")
// is bound to, or "" when it is not listening.
func (m *Main) SIPAddr(network string) string {
	if m.layers.transport == nil {
		return ""
	}
	return m.layers.transport.Addr(network)
}

// Bus returns the node's bus, or nil before Open.
func (m *Main) Bus() bus.Bus {
	if m.bus == nil {
		return nil
	}
	return m.bus
}
