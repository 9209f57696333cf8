package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/callbus/callbus/callcore"
)

// EnvPrefix prefixes every configuration variable.
const EnvPrefix = "CALLBUS_"

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

// Config is callbus's configuration, read from CALLBUS_* variables by Load
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
	RateLimit          int           // RATE_LIMIT: /v1 requests per second per API key (per IP without keys); 0 disables
	RateBurst          int           // RATE_BURST: /v1 requests a caller may make at once
	Inbound            string        // INBOUND: ring, answer or webhook
	WebhookURL         string        // WEBHOOK_URL: the IVR app
	WebhookFallbackURL string        // WEBHOOK_FALLBACK_URL: tried when WEBHOOK_URL fails
	WebhookSecret      string        // WEBHOOK_SECRET: HMAC key of Callbus-Signature
	Bus                string        // BUS: memory or nats
	NATSURL            string        // NATS_URL: NATS servers, comma separated
	NodeID             string        // NODE_ID: this node's id on the bus
	MaxCalls           int           // MAX_CALLS: concurrent calls before new ones are refused
	DrainTimeout       time.Duration // DRAIN_TIMEOUT: how long shutdown waits for in-flight work
	RingTimeout        time.Duration // RING_TIMEOUT: how long an unanswered inbound call rings before 480
	LogLevel           slog.Level    // LOG_LEVEL: debug, info, warn or error
	LogFormat          string        // LOG_FORMAT: text or json
}

// PortRange is an inclusive range of UDP ports.
type PortRange struct {
	Lo, Hi int
}

// String formats r as "lo-hi", the form RTP_PORTS takes.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// spec is the configuration as envconfig reads it, the first step of Load;
// the second, spec.config, validates it into a Config. The tags of a field
// are the one place its variable is declared: envconfig is the full name,
// default the value of an unset variable, desc the meaning, and secret:"true"
// marks a value no message may quote. Vars reads them.
//
// The names carry EnvPrefix in full and Load passes envconfig no prefix:
// given the prefix CALLBUS and a tag HTTP_ADDR, envconfig falls back to the
// bare HTTP_ADDR when CALLBUS_HTTP_ADDR is unset, so another program's
// HTTP_ADDR or LOG_LEVEL would configure callbus.
//
// envconfig applies a default only to an unset variable; one set to "" is
// read as "". Step two refuses "" for a variable that has a default (and for
// NODE_ID) and reads it as "none" for the others.
type spec struct {
	HTTPAddr      string     `envconfig:"CALLBUS_HTTP_ADDR" default:"127.0.0.1:8080" desc:"HTTP listener (REST API, ops endpoints), host:port; beyond loopback requires API_KEYS"`
	SIPAddr       string     `envconfig:"CALLBUS_SIP_ADDR" default:"127.0.0.1:5060" desc:"SIP listener, host:port"`
	SIPTransports []string   `envconfig:"CALLBUS_SIP_TRANSPORTS" default:"udp,tcp" desc:"SIP transports to listen on, a subset of udp,tcp"`
	ExternalIP    netip.Addr `envconfig:"CALLBUS_EXTERNAL_IP" desc:"IP address advertised in SIP and SDP, when it differs from the listener's"`
	RTPPorts      string     `envconfig:"CALLBUS_RTP_PORTS" default:"10000-20000" desc:"UDP port range for RTP/RTCP, lo-hi, 1024..65535, lo even"`
	DataDir       string     `envconfig:"CALLBUS_DATA_DIR" default:"./data" desc:"directory for the database and recordings"`
	MediaDir      string     `envconfig:"CALLBUS_MEDIA_DIR" default:"./media" desc:"directory of audio files that playback may name (may be created after start-up)"`
	// APIKeys is split by step two, not by envconfig, which would read a
	// value of only spaces as no keys at all, that is as no auth.
	APIKeys            string        `envconfig:"CALLBUS_API_KEYS" secret:"true" desc:"comma-separated bearer keys (16+ characters each) required on /v1; none means no auth"`
	RateLimit          int           `envconfig:"CALLBUS_RATE_LIMIT" default:"50" desc:"average /v1 requests per second allowed to each API key (each client IP without keys); 0 disables the limit"`
	RateBurst          int           `envconfig:"CALLBUS_RATE_BURST" default:"100" desc:"most /v1 requests a caller may make at once (at least RATE_LIMIT)"`
	Inbound            string        `envconfig:"CALLBUS_INBOUND" default:"ring" desc:"what an inbound call does: ring (wait for answer/reject), answer, or webhook"`
	WebhookURL         string        `envconfig:"CALLBUS_WEBHOOK_URL" desc:"http(s) URL of the IVR app; required by INBOUND=webhook"`
	WebhookFallbackURL string        `envconfig:"CALLBUS_WEBHOOK_FALLBACK_URL" desc:"http(s) URL tried when WEBHOOK_URL fails"`
	WebhookSecret      string        `envconfig:"CALLBUS_WEBHOOK_SECRET" secret:"true" desc:"HMAC-SHA256 key (16+ characters) signing webhook requests"`
	Bus                string        `envconfig:"CALLBUS_BUS" default:"memory" desc:"event bus: memory (one node); nats is not available in this build yet"`
	NATSURL            string        `envconfig:"CALLBUS_NATS_URL" desc:"NATS server URLs (nats:// or tls://), comma-separated; required by BUS=nats"`
	NodeID             *string       `envconfig:"CALLBUS_NODE_ID" desc:"this node's id, ^[a-z0-9][a-z0-9-]{0,31}$; default derived from the host name"` // nil when unset
	MaxCalls           int           `envconfig:"CALLBUS_MAX_CALLS" default:"1000" desc:"maximum concurrent calls"`
	DrainTimeout       time.Duration `envconfig:"CALLBUS_DRAIN_TIMEOUT" default:"30s" desc:"how long shutdown waits for in-flight work (Go duration)"`
	RingTimeout        time.Duration `envconfig:"CALLBUS_RING_TIMEOUT" default:"30s" desc:"how long an inbound call rings unanswered before it is refused with 480 (Go duration)"`
	LogLevel           string        `envconfig:"CALLBUS_LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat          string        `envconfig:"CALLBUS_LOG_FORMAT" default:"text" desc:"text or json"`
}

// Var describes one configuration variable.
type Var struct {
	// Name is the variable's name without EnvPrefix.
	Name string
	// Default is the value used when the variable is unset; "" means none
	// (NODE_ID's default is derived from the host name).
	Default string
	// Doc says what the variable means.
	Doc string
	// Secret is set when the value must never be shown.
	Secret bool
}

// Vars lists every configuration variable in documentation order. It reads
// the tags of spec, which envconfig reads too, so the two cannot drift.
func Vars() []Var {
	t := reflect.TypeFor[spec]()
	vars := make([]Var, 0, t.NumField())
	for i := range t.NumField() {
		tag := t.Field(i).Tag
		secret, _ := strconv.ParseBool(tag.Get("secret"))
		vars = append(vars, Var{
			Name:    strings.TrimPrefix(tag.Get("envconfig"), EnvPrefix),
			Default: tag.Get("default"),
			Doc:     tag.Get("desc"),
			Secret:  secret,
		})
	}
	return vars
}

// lookupVar returns the Var named name (without EnvPrefix).
func lookupVar(name string) (Var, bool) {
	for _, v := range Vars() {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// ConfigError is a configuration value that stops start-up. Its message is
// one line naming the variable.
type ConfigError struct {
	Var string // the full variable name, e.g. CALLBUS_MAX_CALLS
	Msg string
}

// Error returns "CALLBUS_X: what is wrong".
func (e *ConfigError) Error() string { return e.Var + ": " + e.Msg }

// Load reads the configuration from the environment with envconfig, applying
// the defaults of Vars, and validates it. The error, a *ConfigError, names
// the first bad variable in one line. Values of secrets (API_KEYS,
// WEBHOOK_SECRET) are never quoted in it.
func Load() (Config, error) {
	var s spec
	if err := envconfig.Process("", &s); err != nil {
		return Config{}, fromEnvconfig(err)
	}
	return s.config()
}

// fromEnvconfig turns an error of envconfig.Process into a one-line
// *ConfigError; envconfig's own message is long and names Go types.
func fromEnvconfig(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		// Only a spec that is not a struct pointer, or a missing
		// required:"true" variable, gets here; spec has neither.
		return fmt.Errorf("reading the %s* variables: %v", EnvPrefix, err)
	}
	v, _ := lookupVar(strings.TrimPrefix(pe.KeyName, EnvPrefix))
	if pe.Value == "" && v.Default != "" {
		return &ConfigError{pe.KeyName, emptyMsg(v.Default)}
	}
	var what string
	switch {
	case errors.Is(pe.Err, strconv.ErrRange):
		what = "is out of range"
	case pe.TypeName == reflect.TypeFor[int]().String():
		what = "is not an integer"
	case pe.TypeName == reflect.TypeFor[time.Duration]().String():
		what = "is not a duration (e.g. 30s, 1m)"
	case pe.TypeName == reflect.TypeFor[netip.Addr]().String():
		what = "is not an IP address"
	default:
		what = "is not a valid " + pe.TypeName
	}
	if v.Secret {
		return &ConfigError{pe.KeyName, "the value " + what}
	}
	return &ConfigError{pe.KeyName, fmt.Sprintf("%q %s", pe.Value, what)}
}

// emptyMsg explains why a variable with a default may not be set to "".
func emptyMsg(def string) string {
	return fmt.Sprintf("is empty; unset it to use the default %q", def)
}

// config validates s, the second step of Load.
func (s *spec) config() (Config, error) {
	var v validator
	var c Config
	c.HTTPAddr = v.hostPort("HTTP_ADDR", s.HTTPAddr)
	c.SIPAddr = v.hostPort("SIP_ADDR", s.SIPAddr)
	c.SIPTransports = v.transports("SIP_TRANSPORTS", s.SIPTransports)
	c.ExternalIP = v.ip("EXTERNAL_IP", s.ExternalIP)
	c.RTPPorts = v.portRange("RTP_PORTS", s.RTPPorts)
	c.DataDir = v.nonEmpty("DATA_DIR", s.DataDir)
	c.MediaDir = v.nonEmpty("MEDIA_DIR", s.MediaDir)
	c.APIKeys = v.keys("API_KEYS", s.APIKeys)
	c.RateLimit = v.nonNegativeInt("RATE_LIMIT", s.RateLimit)
	c.RateBurst = v.positiveInt("RATE_BURST", s.RateBurst)
	c.Inbound = v.oneOf("INBOUND", s.Inbound, InboundRing, InboundAnswer, InboundWebhook)
	c.WebhookURL = v.httpURL("WEBHOOK_URL", s.WebhookURL)
	c.WebhookFallbackURL = v.httpURL("WEBHOOK_FALLBACK_URL", s.WebhookFallbackURL)
	c.WebhookSecret = v.secret("WEBHOOK_SECRET", s.WebhookSecret)
	c.Bus = v.oneOf("BUS", s.Bus, BusMemory, BusNATS)
	c.NATSURL = v.natsURL("NATS_URL", s.NATSURL)
	c.NodeID = v.nodeID("NODE_ID", s.NodeID)
	c.MaxCalls = v.positiveInt("MAX_CALLS", s.MaxCalls)
	c.DrainTimeout = v.positiveDuration("DRAIN_TIMEOUT", s.DrainTimeout)
	c.RingTimeout = v.positiveDuration("RING_TIMEOUT", s.RingTimeout)
	c.LogLevel = v.logLevel("LOG_LEVEL", s.LogLevel)
	c.LogFormat = v.oneOf("LOG_FORMAT", s.LogFormat, LogFormatText, LogFormatJSON)
	if v.err != nil {
		return Config{}, v.err
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

// validator checks the values envconfig read and keeps the first error;
// once it has one, every later check is skipped so that exactly one
// variable is reported. Its methods take the variable's name without
// EnvPrefix.
type validator struct {
	err error
}

func (v *validator) fail(name, format string, args ...any) {
	v.err = &ConfigError{EnvPrefix + name, fmt.Sprintf(format, args...)}
}

// present reports whether the checks of a variable with a default should
// go on: not after an earlier failure, and not when it is set to "" (which
// envconfig reads as "", not as the default).
func (v *validator) present(name, value string) bool {
	if v.err != nil {
		return false
	}
	if value == "" {
		d, _ := lookupVar(name)
		v.fail(name, "%s", emptyMsg(d.Default))
		return false
	}
	return true
}

func (v *validator) nonEmpty(name, value string) string {
	v.present(name, value)
	return value
}

func (v *validator) hostPort(name, value string) string {
	if !v.present(name, value) {
		return ""
	}
	_, port, err := net.SplitHostPort(value)
	if err != nil {
		v.fail(name, "%q is not host:port", value)
		return ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(name, "%q: port %q is not a number in 0..65535", value, port)
		return ""
	}
	return value
}

// transports checks list, which envconfig split at commas; a value of only
// spaces is an empty list.
func (v *validator) transports(name string, list []string) []string {
	if !v.present(name, strings.Join(list, ",")) {
		return nil
	}
	var out []string
	for _, t := range list {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case t != "udp" && t != "tcp":
			v.fail(name, "%q: each transport must be udp or tcp", strings.Join(list, ","))
			return nil
		case slices.Contains(out, t):
			v.fail(name, "%q names %s twice", strings.Join(list, ","), t)
			return nil
		}
		out = append(out, t)
	}
	return out
}

// ip checks an address envconfig parsed already; the zero Addr is unset.
func (v *validator) ip(name string, ip netip.Addr) netip.Addr {
	if v.err != nil || !ip.IsValid() {
		return netip.Addr{}
	}
	if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
		v.fail(name, "%q cannot be advertised to peers", ip)
	}
	return ip
}

func (v *validator) portRange(name, value string) PortRange {
	if !v.present(name, value) {
		return PortRange{}
	}
	lo, hi, found := strings.Cut(value, "-")
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	switch {
	case !found || err1 != nil || err2 != nil:
		v.fail(name, "%q is not lo-hi (e.g. 10000-20000)", value)
	case l < 1024 || h > 65535:
		v.fail(name, "%q: ports must be in 1024..65535", value)
	case l%2 != 0:
		v.fail(name, "%q: the first port must be even (RTP takes even ports, RTCP the next)", value)
	case l >= h:
		v.fail(name, "%q: lo must be below hi", value)
	}
	return PortRange{l, h}
}

// keys splits a secret list; "" is none. Messages never quote it.
func (v *validator) keys(name, value string) []string {
	if v.err != nil || value == "" {
		return nil
	}
	keys := strings.Split(value, ",")
	for i, k := range keys {
		switch {
		case k == "":
			v.fail(name, "entry %d of %d is empty", i+1, len(keys))
			return nil
		case !printableToken(k):
			v.fail(name, "entry %d contains a space or a character outside printable ASCII", i+1)
			return nil
		case len(k) < 16:
			v.fail(name, "entry %d has %d characters; each key needs at least 16", i+1, len(k))
			return nil
		}
	}
	return keys
}

// secret checks a secret; "" is none. Messages never quote it.
func (v *validator) secret(name, value string) string {
	if v.err == nil && value != "" && len(value) < 16 {
		v.fail(name, "has %d characters; it needs at least 16", len(value))
	}
	return value
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

func (v *validator) oneOf(name, value string, allowed ...string) string {
	if !v.present(name, value) {
		return ""
	}
	if !slices.Contains(allowed, value) {
		v.fail(name, "%q is not one of %s", value, strings.Join(allowed, ", "))
	}
	return value
}

// httpURL checks an optional URL; "" is none.
func (v *validator) httpURL(name, value string) string {
	if v.err != nil || value == "" {
		return ""
	}
	if !callcore.ValidHTTPURL(value) {
		v.fail(name, "%q is not an absolute http or https URL", value)
	}
	return value
}

// natsURL checks an optional list of URLs; "" is none.
func (v *validator) natsURL(name, value string) string {
	if v.err != nil || value == "" {
		return ""
	}
	for _, s := range strings.Split(value, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			v.fail(name, "%q is not a list of nats:// or tls:// URLs", value)
			return ""
		}
	}
	return value
}

var nodeIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// nodeID checks the node id; nil (unset) derives it from the host name.
func (v *validator) nodeID(name string, value *string) string {
	switch {
	case v.err != nil:
		return ""
	case value == nil:
		host, _ := os.Hostname()
		return nodeIDFromHost(host)
	case *value == "":
		v.fail(name, "is empty; unset it to derive the id from the host name")
	case !nodeIDPattern.MatchString(*value):
		v.fail(name, "%q must match %s", *value, nodeIDPattern)
	}
	return *value
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

// positiveInt checks a number envconfig parsed already.
func (v *validator) positiveInt(name string, n int) int {
	if v.err == nil && n <= 0 {
		v.fail(name, "%q must be greater than 0", strconv.Itoa(n))
	}
	return n
}

// nonNegativeInt checks a number envconfig parsed already.
func (v *validator) nonNegativeInt(name string, n int) int {
	if v.err == nil && n < 0 {
		v.fail(name, "%q must be 0 or more", strconv.Itoa(n))
	}
	return n
}

// positiveDuration checks a duration envconfig parsed already.
func (v *validator) positiveDuration(name string, d time.Duration) time.Duration {
	if v.err == nil && d <= 0 {
		v.fail(name, "%q must be greater than 0", d)
	}
	return d
}

func (v *validator) logLevel(name, value string) slog.Level {
	if !v.present(name, value) {
		return 0
	}
	switch value {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	v.fail(name, "%q is not one of debug, info, warn, error", value)
	return 0
}
