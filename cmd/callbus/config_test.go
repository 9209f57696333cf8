package main

import (
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env is a hermetic environment for Parse.
type env map[string]string

func (e env) lookup(key string) (string, bool) {
	v, ok := e[key]
	return v, ok
}

const goodKey = "0123456789abcdef"

func TestParseDefaults(t *testing.T) {
	c, err := Parse(env{"CALLBUS_NODE_ID": "a"}.lookup)
	if err != nil {
		t.Fatalf("Parse(defaults): %v", err)
	}
	want := Config{
		HTTPAddr:      "127.0.0.1:8080",
		SIPAddr:       "127.0.0.1:5060",
		SIPTransports: []string{"udp", "tcp"},
		RTPPorts:      PortRange{10000, 20000},
		DataDir:       "./data",
		MediaDir:      "./media",
		Inbound:       InboundRing,
		Bus:           BusMemory,
		NodeID:        "a",
		MaxCalls:      1000,
		DrainTimeout:  30 * time.Second,
		LogLevel:      slog.LevelInfo,
		LogFormat:     LogFormatText,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(defaults) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseDefaultNodeIDFromHost(t *testing.T) {
	c, err := Parse(env{}.lookup)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	host, _ := os.Hostname()
	if want := nodeIDFromHost(host); c.NodeID != want {
		t.Errorf("NodeID = %q, want %q (from host %q)", c.NodeID, want, host)
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		t.Errorf("derived NodeID %q does not match %s", c.NodeID, nodeIDPattern)
	}
}

func TestNodeIDFromHost(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"callbus-1", "callbus-1"},
		{"Web01.Example.COM", "web01-example-com"},
		{"_under_score_", "under-score"},
		{"--x--", "x"},
		{"", "node"},
		{"...", "node"},
		{"héllo", "h-llo"},
		{strings.Repeat("a", 40), strings.Repeat("a", 32)},
		{strings.Repeat("a", 31) + ".b", strings.Repeat("a", 31)},
	} {
		t.Run("host="+tc.host, func(t *testing.T) {
			got := nodeIDFromHost(tc.host)
			if got != tc.want {
				t.Errorf("nodeIDFromHost(%q) = %q, want %q", tc.host, got, tc.want)
			}
			if !nodeIDPattern.MatchString(got) {
				t.Errorf("nodeIDFromHost(%q) = %q does not match %s", tc.host, got, nodeIDPattern)
			}
		})
	}
}

func TestParseGoodValues(t *testing.T) {
	c, err := Parse(env{
		"CALLBUS_HTTP_ADDR":            "0.0.0.0:80",
		"CALLBUS_API_KEYS":             goodKey + "," + goodKey + "X",
		"CALLBUS_SIP_TRANSPORTS":       "TCP",
		"CALLBUS_EXTERNAL_IP":          "203.0.113.7",
		"CALLBUS_RTP_PORTS":            "1024-1025",
		"CALLBUS_INBOUND":              "webhook",
		"CALLBUS_WEBHOOK_URL":          "https://app.example.com/ivr",
		"CALLBUS_WEBHOOK_FALLBACK_URL": "http://10.0.0.1:9000/",
		"CALLBUS_WEBHOOK_SECRET":       goodKey,
		"CALLBUS_NATS_URL":             "nats://n1:4222,tls://n2:4222",
		"CALLBUS_NODE_ID":              "node-7",
		"CALLBUS_MAX_CALLS":            "5",
		"CALLBUS_DRAIN_TIMEOUT":        "1m30s",
		"CALLBUS_LOG_LEVEL":            "debug",
		"CALLBUS_LOG_FORMAT":           "json",
	}.lookup)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !reflect.DeepEqual(c.SIPTransports, []string{"tcp"}) {
		t.Errorf("SIPTransports = %q, want [tcp]", c.SIPTransports)
	}
	if c.ExternalIP != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("ExternalIP = %v", c.ExternalIP)
	}
	if c.RTPPorts != (PortRange{1024, 1025}) || len(c.APIKeys) != 2 || c.MaxCalls != 5 ||
		c.DrainTimeout != 90*time.Second || c.LogLevel != slog.LevelDebug || c.LogFormat != "json" ||
		c.Inbound != "webhook" || c.NodeID != "node-7" {
		t.Errorf("Parse = %+v", c)
	}
}

// TestParseBadValues feeds a bad value to every variable. Each must stop
// start-up with exactly one line that names the variable, and must not
// quote a secret.
func TestParseBadValues(t *testing.T) {
	cases := []struct {
		name string
		env  env
	}{
		{"HTTP_ADDR", env{"CALLBUS_HTTP_ADDR": "localhost"}},
		{"HTTP_ADDR", env{"CALLBUS_HTTP_ADDR": "127.0.0.1:http"}},
		{"HTTP_ADDR", env{"CALLBUS_HTTP_ADDR": "127.0.0.1:70000"}},
		{"HTTP_ADDR", env{"CALLBUS_HTTP_ADDR": ""}},
		{"SIP_ADDR", env{"CALLBUS_SIP_ADDR": "5060"}},
		{"SIP_TRANSPORTS", env{"CALLBUS_SIP_TRANSPORTS": "udp,tls"}},
		{"SIP_TRANSPORTS", env{"CALLBUS_SIP_TRANSPORTS": "udp,udp"}},
		{"SIP_TRANSPORTS", env{"CALLBUS_SIP_TRANSPORTS": ""}},
		{"EXTERNAL_IP", env{"CALLBUS_EXTERNAL_IP": "1.2.3"}},
		{"EXTERNAL_IP", env{"CALLBUS_EXTERNAL_IP": "0.0.0.0"}},
		{"EXTERNAL_IP", env{"CALLBUS_EXTERNAL_IP": "example.com"}},
		{"RTP_PORTS", env{"CALLBUS_RTP_PORTS": "10000"}},
		{"RTP_PORTS", env{"CALLBUS_RTP_PORTS": "10001-20000"}},
		{"RTP_PORTS", env{"CALLBUS_RTP_PORTS": "1000-2000"}},
		{"RTP_PORTS", env{"CALLBUS_RTP_PORTS": "10000-65536"}},
		{"RTP_PORTS", env{"CALLBUS_RTP_PORTS": "20000-10000"}},
		{"RTP_PORTS", env{"CALLBUS_RTP_PORTS": "10000-10000"}},
		{"DATA_DIR", env{"CALLBUS_DATA_DIR": ""}},
		{"MEDIA_DIR", env{"CALLBUS_MEDIA_DIR": ""}},
		{"API_KEYS", env{"CALLBUS_API_KEYS": "short-key"}},
		{"API_KEYS", env{"CALLBUS_API_KEYS": goodKey + ","}},
		{"API_KEYS", env{"CALLBUS_API_KEYS": goodKey + ",," + goodKey}},
		{"API_KEYS", env{"CALLBUS_API_KEYS": goodKey + " with space"}},
		{"INBOUND", env{"CALLBUS_INBOUND": "pickup"}},
		{"INBOUND", env{"CALLBUS_INBOUND": "webhook"}},
		{"WEBHOOK_URL", env{"CALLBUS_WEBHOOK_URL": "/relative/path"}},
		{"WEBHOOK_URL", env{"CALLBUS_WEBHOOK_URL": "ftp://example.com/x"}},
		{"WEBHOOK_FALLBACK_URL", env{"CALLBUS_WEBHOOK_FALLBACK_URL": "example.com/hook"}},
		{"WEBHOOK_SECRET", env{"CALLBUS_WEBHOOK_SECRET": "tooshort"}},
		{"BUS", env{"CALLBUS_BUS": "kafka"}},
		{"BUS", env{"CALLBUS_BUS": "nats"}},
		{"BUS", env{"CALLBUS_BUS": "nats", "CALLBUS_NATS_URL": "nats://127.0.0.1:4222"}},
		{"NATS_URL", env{"CALLBUS_NATS_URL": "http://127.0.0.1:4222"}},
		{"NODE_ID", env{"CALLBUS_NODE_ID": "Node_1"}},
		{"NODE_ID", env{"CALLBUS_NODE_ID": "-a"}},
		{"NODE_ID", env{"CALLBUS_NODE_ID": strings.Repeat("a", 33)}},
		{"NODE_ID", env{"CALLBUS_NODE_ID": ""}},
		{"MAX_CALLS", env{"CALLBUS_MAX_CALLS": "abc"}},
		{"MAX_CALLS", env{"CALLBUS_MAX_CALLS": "0"}},
		{"DRAIN_TIMEOUT", env{"CALLBUS_DRAIN_TIMEOUT": "30"}},
		{"DRAIN_TIMEOUT", env{"CALLBUS_DRAIN_TIMEOUT": "-1s"}},
		{"LOG_LEVEL", env{"CALLBUS_LOG_LEVEL": "loud"}},
		{"LOG_FORMAT", env{"CALLBUS_LOG_FORMAT": "xml"}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
		t.Run(tc.name+"="+caseValue(tc.env), func(t *testing.T) {
			_, err := Parse(tc.env.lookup)
			if err == nil {
				t.Fatal("Parse accepted the bad value")
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			if want := EnvPrefix + tc.name + ": "; !strings.HasPrefix(msg, want) {
				t.Errorf("error %q does not start with %q", msg, want)
			}
			if ce, ok := err.(*ConfigError); !ok || ce.Var != EnvPrefix+tc.name {
				t.Errorf("error is %T %+v, want *ConfigError for %s", err, err, EnvPrefix+tc.name)
			}
			if tc.name == "API_KEYS" || tc.name == "WEBHOOK_SECRET" {
				if v := tc.env[EnvPrefix+tc.name]; strings.Contains(msg, v) {
					t.Errorf("error %q quotes the secret %q", msg, v)
				}
			}
		})
	}
	for _, v := range Vars() {
		if !covered[v.Name] {
			t.Errorf("no bad-value case for %s%s", EnvPrefix, v.Name)
		}
	}
}

func caseValue(e env) string {
	var parts []string
	for k, v := range e {
		parts = append(parts, strings.TrimPrefix(k, EnvPrefix)+"="+v)
	}
	if len(parts) == 1 {
		_, v, _ := strings.Cut(parts[0], "=")
		return v
	}
	return strings.Join(parts, "/")
}

func TestParseLoopbackWithoutKeys(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:8080", true},
		{"127.9.9.9:0", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"192.0.2.10:8080", false},
		{"callbus.example.com:8080", false},
	} {
		t.Run("addr="+tc.addr, func(t *testing.T) {
			_, err := Parse(env{"CALLBUS_HTTP_ADDR": tc.addr}.lookup)
			if tc.loopback {
				if err != nil {
					t.Fatalf("loopback listener refused: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("listener beyond loopback accepted without API_KEYS")
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "CALLBUS_HTTP_ADDR: ") || !strings.Contains(msg, "CALLBUS_API_KEYS") ||
					strings.Contains(msg, "\n") {
					t.Errorf("refusal %q: want one line naming CALLBUS_HTTP_ADDR and CALLBUS_API_KEYS", msg)
				}
			}
			// With keys, any listener is allowed.
			c, err := Parse(env{"CALLBUS_HTTP_ADDR": tc.addr, "CALLBUS_API_KEYS": goodKey}.lookup)
			if err != nil {
				t.Fatalf("listener with API_KEYS refused: %v", err)
			}
			if c.HTTPAddr != tc.addr || len(c.APIKeys) != 1 || c.APIKeys[0] != goodKey {
				t.Errorf("Parse = HTTPAddr %q, APIKeys %q", c.HTTPAddr, c.APIKeys)
			}
		})
	}
}

// TestVarsMatchDefaults checks that Vars, which the README's table copies,
// agrees with what Parse does.
func TestVarsMatchDefaults(t *testing.T) {
	base, err := Parse(env{"CALLBUS_NODE_ID": "a"}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range Vars() {
		if seen[v.Name] {
			t.Errorf("%s declared twice", v.Name)
		}
		seen[v.Name] = true
		if v.Doc == "" {
			t.Errorf("%s has no doc", v.Name)
		}
		// A variable set to its own default parses to the same config.
		if v.Default == "" {
			continue
		}
		c, err := Parse(env{"CALLBUS_NODE_ID": "a", EnvPrefix + v.Name: v.Default}.lookup)
		if err != nil {
			t.Fatalf("%s=%q (its default): %v", v.Name, v.Default, err)
		}
		if !reflect.DeepEqual(base, c) {
			t.Errorf("%s=%q differs from leaving it unset", v.Name, v.Default)
		}
	}
}

// TestREADMEListsEveryVariable keeps the README's configuration table in
// step with Vars.
func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars() {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		row := "| `" + EnvPrefix + v.Name + "` | " + def + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row starting %q", row)
		}
	}
}
