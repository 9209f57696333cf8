package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix prefixes every configuration variable.
const EnvPrefix = "CALLBUS_"

// LookupFunc returns the value of an environment variable and whether it is
// set at all; os.LookupEnv is one.
type LookupFunc func(key string) (string, bool)

// The values of the enumerated variables.
const (
	InboundRing    = "ring"
	InboundAnswer  = "answer"
	InboundWebhook = "webhook"

	BusMemory = "memory"
	BusNATS   = "nats"

	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Config is callbus's configuration, read from CALLBUS_* variables by Parse
// (DESIGN.md §8). Each field's doc names its variable.
type Config struct {
	HTTPAddr           string        // HTTP_ADDR: REST, WebSocket and ops listener, host:port
	SIPAddr            string        // SIP_ADDR: SIP listener, host:port
	SIPTransports      []string      // SIP_TRANSPORTS: a subset of udp, tcp
	ExternalIP         netip.Addr    // EXTERNAL_IP: address advertised in SIP and SDP; invalid when unset
	RTPPorts           PortRange     // RTP_PORTS: UDP ports for RTP and RTCP
	DataDir            string        // DATA_DIR: database and recordings
	MediaDir           string        // MEDIA_DIR: audio files that play may name
	APIKeys            []string      // API_KEYS: bearer keys for /v1; none means no auth
	Inbound            string        // INBOUND: ring, answer or webhook
	WebhookURL         string        // WEBHOOK_URL: the IVR app
	WebhookFallbackURL string        // WEBHOOK_FALLBACK_URL: tried when WEBHOOK_URL fails
	WebhookSecret      string        // WEBHOOK_SECRET: HMAC key of Callbus-Signature
	Bus                string        // BUS: memory or nats
	NATSURL            string        // NATS_URL: NATS servers, comma separated
	NodeID             string        // NODE_ID: this node's id on the bus
	MaxCalls           int           // MAX_CALLS: concurrent calls before new ones are refused
	DrainTimeout       time.Duration // DRAIN_TIMEOUT: how long shutdown waits for in-flight work
	LogLevel           slog.Level    // LOG_LEVEL: debug, info, warn or error
	LogFormat          string        // LOG_FORMAT: text or json
}

// PortRange is an inclusive range of UDP ports.
type PortRange struct {
	Lo, Hi int
}

// String formats r as "lo-hi", the form RTP_PORTS takes.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// Var describes one configuration variable.
type Var struct {
	// Name is the variable's name without EnvPrefix.
	Name string
	// Default is the value used when the variable is unset; "" means none
	// (NODE_ID's default is derived from the host name).
	Default string
	// Doc says what the variable means.
	Doc string
}

// Vars lists every configuration variable in documentation order.
func Vars() []Var {
	return []Var{
		{"HTTP_ADDR", "127.0.0.1:8080", "HTTP listener (REST API, ops endpoints), host:port; beyond loopback requires API_KEYS"},
		{"SIP_ADDR", "127.0.0.1:5060", "SIP listener, host:port"},
		{"SIP_TRANSPORTS", "udp,tcp", "SIP transports to listen on, a subset of udp,tcp"},
		{"EXTERNAL_IP", "", "IP address advertised in SIP and SDP, when it differs from the listener's"},
		{"RTP_PORTS", "10000-20000", "UDP port range for RTP/RTCP, lo-hi, 1024..65535, lo even"},
		{"DATA_DIR", "./data", "directory for the database and recordings"},
		{"MEDIA_DIR", "./media", "directory of audio files that playback may name"},
		{"API_KEYS", "", "comma-separated bearer keys (16+ characters each) required on /v1; none means no auth"},
		{"INBOUND", InboundRing, "what an inbound call does: ring (wait for answer/reject), answer, or webhook"},
		{"WEBHOOK_URL", "", "http(s) URL of the IVR app; required by INBOUND=webhook"},
		{"WEBHOOK_FALLBACK_URL", "", "http(s) URL tried when WEBHOOK_URL fails"},
		{"WEBHOOK_SECRET", "", "HMAC-SHA256 key (16+ characters) signing webhook requests"},
		{"BUS", BusMemory, "event bus: memory (one node); nats is not available in this build yet"},
		{"NATS_URL", "", "NATS server URLs (nats:// or tls://), comma-separated; required by BUS=nats"},
		{"NODE_ID", "", "this node's id, ^[a-z0-9][a-z0-9-]{0,31}$; default derived from the host name"},
		{"MAX_CALLS", "1000", "maximum concurrent calls"},
		{"DRAIN_TIMEOUT", "30s", "how long shutdown waits for in-flight work (Go duration)"},
		{"LOG_LEVEL", "info", "debug, info, warn or error"},
		{"LOG_FORMAT", LogFormatText, "text or json"},
	}
}

// ConfigError is a configuration value that stops start-up. Its message is
// one line naming the variable.
type ConfigError struct {
	Var string // the full variable name, e.g. CALLBUS_MAX_CALLS
	Msg string
}

// Error returns "CALLBUS_X: what is wrong".
func (e *ConfigError) Error() string { return e.Var + ": " + e.Msg }

// Parse reads the configuration through lookup, applying the defaults of
// Vars, and validates it. The error, a *ConfigError, names the first bad
// variable in one line. Values of secrets (API_KEYS, WEBHOOK_SECRET) are
// never quoted in it.
func Parse(lookup LookupFunc) (Config, error) {
	p := parser{lookup: lookup}
	var c Config
	c.HTTPAddr = p.hostPort("HTTP_ADDR")
	c.SIPAddr = p.hostPort("SIP_ADDR")
	c.SIPTransports = p.transports("SIP_TRANSPORTS")
	c.ExternalIP = p.ip("EXTERNAL_IP")
	c.RTPPorts = p.portRange("RTP_PORTS")
	c.DataDir = p.nonEmpty("DATA_DIR")
	c.MediaDir = p.nonEmpty("MEDIA_DIR")
	c.APIKeys = p.keys("API_KEYS")
	c.Inbound = p.oneOf("INBOUND", InboundRing, InboundAnswer, InboundWebhook)
	c.WebhookURL = p.httpURL("WEBHOOK_URL")
	c.WebhookFallbackURL = p.httpURL("WEBHOOK_FALLBACK_URL")
	c.WebhookSecret = p.secret("WEBHOOK_SECRET")
	c.Bus = p.oneOf("BUS", BusMemory, BusNATS)
	c.NATSURL = p.natsURL("NATS_URL")
	c.NodeID = p.nodeID("NODE_ID")
	c.MaxCalls = p.positiveInt("MAX_CALLS")
	c.DrainTimeout = p.positiveDuration("DRAIN_TIMEOUT")
	c.LogLevel = p.logLevel("LOG_LEVEL")
	c.LogFormat = p.oneOf("LOG_FORMAT", LogFormatText, LogFormatJSON)
	if p.err != nil {
		return Config{}, p.err
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// check applies the rules that involve more than one variable.
func (c *Config) check() error {
	if c.Inbound == InboundWebhook && c.WebhookURL == "" {
		return &ConfigError{EnvPrefix + "INBOUND", "webhook needs " + EnvPrefix + "WEBHOOK_URL"}
	}
	if c.Bus == BusNATS {
		if c.NATSURL == "" {
			return &ConfigError{EnvPrefix + "BUS", "nats needs " + EnvPrefix + "NATS_URL"}
		}
		return &ConfigError{EnvPrefix + "BUS", "the NATS bus is not available in this build yet; use memory"}
	}
	if len(c.APIKeys) == 0 && !isLoopback(c.HTTPAddr) {
		return &ConfigError{EnvPrefix + "HTTP_ADDR", fmt.Sprintf(
			"%q listens beyond loopback; set %sAPI_KEYS or listen on 127.0.0.1", c.HTTPAddr, EnvPrefix)}
	}
	return nil
}

// isLoopback reports whether a listener on addr (a valid host:port) is
// reachable from this host only. An empty host means every interface; a
// host name other than localhost may resolve anywhere, so it is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parser reads variables and keeps the first error; once it has one, every
// later read is skipped so that exactly one variable is reported.
type parser struct {
	lookup LookupFunc
	err    error
}

// get returns the variable's value, or its default when unset. ok is false
// when an earlier variable failed.
func (p *parser) get(name string) (v string, ok bool) {
	if p.err != nil {
		return "", false
	}
	if v, set := p.lookup(EnvPrefix + name); set {
		return v, true
	}
	for _, d := range Vars() {
		if d.Name == name {
			return d.Default, true
		}
	}
	panic("config: undeclared variable " + name)
}

func (p *parser) fail(name, format string, args ...any) {
	p.err = &ConfigError{EnvPrefix + name, fmt.Sprintf(format, args...)}
}

func (p *parser) nonEmpty(name string) string {
	v, ok := p.get(name)
	if ok && v == "" {
		p.fail(name, "must not be empty")
	}
	return v
}

func (p *parser) hostPort(name string) string {
	v, ok := p.get(name)
	if !ok {
		return ""
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		p.fail(name, "%q is not host:port", v)
		return ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(name, "%q: port %q is not a number in 0..65535", v, port)
		return ""
	}
	return v
}

func (p *parser) transports(name string) []string {
	v, ok := p.get(name)
	if !ok {
		return nil
	}
	var out []string
	for _, t := range strings.Split(v, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case t != "udp" && t != "tcp":
			p.fail(name, "%q: each transport must be udp or tcp", v)
			return nil
		case slices.Contains(out, t):
			p.fail(name, "%q names %s twice", v, t)
			return nil
		}
		out = append(out, t)
	}
	return out
}

func (p *parser) ip(name string) netip.Addr {
	v, ok := p.get(name)
	if !ok || v == "" {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		p.fail(name, "%q is not an IP address", v)
	case ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast():
		p.fail(name, "%q cannot be advertised to peers", v)
	}
	return ip
}

func (p *parser) portRange(name string) PortRange {
	v, ok := p.get(name)
	if !ok {
		return PortRange{}
	}
	lo, hi, found := strings.Cut(v, "-")
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	switch {
	case !found || err1 != nil || err2 != nil:
		p.fail(name, "%q is not lo-hi (e.g. 10000-20000)", v)
	case l < 1024 || h > 65535:
		p.fail(name, "%q: ports must be in 1024..65535", v)
	case l%2 != 0:
		p.fail(name, "%q: the first port must be even (RTP takes even ports, RTCP the next)", v)
	case l >= h:
		p.fail(name, "%q: lo must be below hi", v)
	}
	return PortRange{l, h}
}

func (p *parser) keys(name string) []string {
	v, ok := p.get(name)
	if !ok || v == "" {
		return nil
	}
	keys := strings.Split(v, ",")
	for i, k := range keys {
		switch {
		case k == "":
			p.fail(name, "entry %d of %d is empty", i+1, len(keys))
			return nil
		case !printableToken(k):
			p.fail(name, "entry %d contains a space or a character outside printable ASCII", i+1)
			return nil
		case len(k) < 16:
			p.fail(name, "entry %d has %d characters; each key needs at least 16", i+1, len(k))
			return nil
		}
	}
	return keys
}

func (p *parser) secret(name string) string {
	v, ok := p.get(name)
	if ok && v != "" && len(v) < 16 {
		p.fail(name, "has %d characters; it needs at least 16", len(v))
	}
	return v
}

// printableToken reports whether s is visible ASCII without spaces, so
// that it can travel in an Authorization header unchanged.
func printableToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func (p *parser) oneOf(name string, allowed ...string) string {
	v, ok := p.get(name)
	if !ok {
		return ""
	}
	if !slices.Contains(allowed, v) {
		p.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return v
}

func (p *parser) httpURL(name string) string {
	v, ok := p.get(name)
	if !ok || v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail(name, "%q is not an absolute http or https URL", v)
	}
	return v
}

func (p *parser) natsURL(name string) string {
	v, ok := p.get(name)
	if !ok || v == "" {
		return ""
	}
	for _, s := range strings.Split(v, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			p.fail(name, "%q is not a list of nats:// or tls:// URLs", v)
			return ""
		}
	}
	return v
}

var nodeIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func (p *parser) nodeID(name string) string {
	if p.err != nil {
		return ""
	}
	v, set := p.lookup(EnvPrefix + name)
	if !set {
		host, _ := os.Hostname()
		return nodeIDFromHost(host)
	}
	if !nodeIDPattern.MatchString(v) {
		p.fail(name, "%q must match %s", v, nodeIDPattern)
	}
	return v
}

// nodeIDFromHost derives a node id from a host name: lowercased, every
// character outside [a-z0-9] made a '-', cut to 32 characters, leading and
// trailing dashes dropped; "node" when nothing is left.
func nodeIDFromHost(host string) string {
	b := make([]byte, 0, 32)
	for _, r := range strings.ToLower(host) {
		if len(b) == 32 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		case len(b) > 0:
			b = append(b, '-')
		}
	}
	id := strings.TrimRight(string(b), "-")
	if id == "" {
		return "node"
	}
	return id
}

func (p *parser) positiveInt(name string) int {
	v, ok := p.get(name)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		p.fail(name, "%q is not an integer", v)
	case n <= 0:
		p.fail(name, "%q must be greater than 0", v)
	}
	return n
}

func (p *parser) positiveDuration(name string) time.Duration {
	v, ok := p.get(name)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.fail(name, "%q is not a duration (e.g. 30s, 1m)", v)
	case d <= 0:
		p.fail(name, "%q must be greater than 0", v)
	}
	return d
}

func (p *parser) logLevel(name string) slog.Level {
	v, ok := p.get(name)
	if !ok {
		return 0
	}
	switch v {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.fail(name, "%q is not one of debug, info, warn, error", v)
	return 0
}
