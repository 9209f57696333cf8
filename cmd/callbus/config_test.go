package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// env is a set of environment variables for one test.
type env map[string]string

// setenv makes e's variables the only CALLBUS_ configuration variables set
// for the rest of the test: the others are unset, and all are restored when
// it ends. Like t.Setenv, it cannot be used in a parallel test.
func setenv(t *testing.T, e env) {
	t.Helper()
	for _, v := range Vars() {
		key := EnvPrefix + v.Name
		if _, set := os.LookupEnv(key); set {
			t.Setenv(key, "") // restores the value when the test ends
			if err := os.Unsetenv(key); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, v := range e {
		t.Setenv(k, v)
	}
}

// load runs Load with exactly e's configuration variables set.
func load(t *testing.T, e env) (Config, error) {
	t.Helper()
	setenv(t, e)
	return Load()
}

const goodKey = "0123456789abcdef"

func TestLoadDefaults(t *testing.T) {
	c, err := load(t, env{"CALLBUS_NODE_ID": "a"})
	if err != nil {
		t.Fatalf("Load(defaults): %v", err)
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
		RateLimit:     50,
		RateBurst:     100,
		DrainTimeout:  30 * time.Second,
		RingTimeout:   30 * time.Second,
		LogLevel:      slog.LevelInfo,
		LogFormat:     LogFormatText,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(defaults) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadDefaultNodeIDFromHost(t *testing.T) {
	c, err := load(t, env{})
	if err != nil {
		t.Fatalf("Load: %v", err)
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

func TestLoadGoodValues(t *testing.T) {
	c, err := load(t, env{
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
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
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
		t.Errorf("Load = %+v", c)
	}
}

// TestLoadBadValues feeds a bad value to every variable. Each must stop
// start-up with exactly one line that names the variable, and must not
// quote a secret.
func TestLoadBadValues(t *testing.T) {
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
		{"MAX_CALLS", env{"CALLBUS_MAX_CALLS": "-3"}},
		{"MAX_CALLS", env{"CALLBUS_MAX_CALLS": "99999999999999999999"}},
		{"MAX_CALLS", env{"CALLBUS_MAX_CALLS": ""}},
		{"DRAIN_TIMEOUT", env{"CALLBUS_DRAIN_TIMEOUT": "30"}},
		{"DRAIN_TIMEOUT", env{"CALLBUS_DRAIN_TIMEOUT": "-1s"}},
		{"DRAIN_TIMEOUT", env{"CALLBUS_DRAIN_TIMEOUT": ""}},
		{"RING_TIMEOUT", env{"CALLBUS_RING_TIMEOUT": "30"}},
		{"RING_TIMEOUT", env{"CALLBUS_RING_TIMEOUT": "0s"}},
		{"LOG_LEVEL", env{"CALLBUS_LOG_LEVEL": "loud"}},
		{"LOG_LEVEL", env{"CALLBUS_LOG_LEVEL": ""}},
		{"LOG_FORMAT", env{"CALLBUS_LOG_FORMAT": "xml"}},
		{"RATE_LIMIT", env{"CALLBUS_RATE_LIMIT": "-1"}},
		{"RATE_LIMIT", env{"CALLBUS_RATE_LIMIT": "fast"}},
		{"RATE_BURST", env{"CALLBUS_RATE_BURST": "0"}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
		t.Run(tc.name+"="+caseValue(tc.env), func(t *testing.T) {
			_, err := load(t, tc.env)
			if err == nil {
				t.Fatal("Load accepted the bad value")
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			if strings.Contains(msg, "envconfig") {
				t.Errorf("error %q is envconfig's message, not ours", msg)
			}
			if want := EnvPrefix + tc.name + ": "; !strings.HasPrefix(msg, want) {
				t.Errorf("error %q does not start with %q", msg, want)
			}
			if ce, ok := err.(*ConfigError); !ok || ce.Var != EnvPrefix+tc.name {
				t.Errorf("error is %T %+v, want *ConfigError for %s", err, err, EnvPrefix+tc.name)
			}
			if v, _ := lookupVar(tc.name); v.Secret {
				if val := tc.env[EnvPrefix+tc.name]; strings.Contains(msg, val) {
					t.Errorf("error %q quotes the secret %q", msg, val)
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

func TestLoadLoopbackWithoutKeys(t *testing.T) {
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
			_, err := load(t, env{"CALLBUS_HTTP_ADDR": tc.addr})
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
			c, err := load(t, env{"CALLBUS_HTTP_ADDR": tc.addr, "CALLBUS_API_KEYS": goodKey})
			if err != nil {
				t.Fatalf("listener with API_KEYS refused: %v", err)
			}
			if c.HTTPAddr != tc.addr || len(c.APIKeys) != 1 || c.APIKeys[0] != goodKey {
				t.Errorf("Load = HTTPAddr %q, APIKeys %q", c.HTTPAddr, c.APIKeys)
			}
		})
	}
}

// TestVarsMatchDefaults checks that Vars, which the README's table copies,
// agrees with what Load does.
func TestVarsMatchDefaults(t *testing.T) {
	base, err := load(t, env{"CALLBUS_NODE_ID": "a"})
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
		c, err := load(t, env{"CALLBUS_NODE_ID": "a", EnvPrefix + v.Name: v.Default})
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

// TestLoadMessages pins the wording of a few lines, among them the
// README's example and envconfig's own parse errors in our words.
func TestLoadMessages(t *testing.T) {
	for _, tc := range []struct {
		env  env
		want string
	}{
		{env{"CALLBUS_MAX_CALLS": "abc"}, `CALLBUS_MAX_CALLS: "abc" is not an integer`},
		{env{"CALLBUS_MAX_CALLS": "1e3"}, `CALLBUS_MAX_CALLS: "1e3" is not an integer`},
		{env{"CALLBUS_MAX_CALLS": "99999999999999999999"}, `CALLBUS_MAX_CALLS: "99999999999999999999" is out of range`},
		{env{"CALLBUS_MAX_CALLS": "0"}, `CALLBUS_MAX_CALLS: "0" must be greater than 0`},
		{env{"CALLBUS_MAX_CALLS": ""}, `CALLBUS_MAX_CALLS: is empty; unset it to use the default "1000"`},
		{env{"CALLBUS_DRAIN_TIMEOUT": "30"}, `CALLBUS_DRAIN_TIMEOUT: "30" is not a duration (e.g. 30s, 1m)`},
		{env{"CALLBUS_DRAIN_TIMEOUT": "-1s"}, `CALLBUS_DRAIN_TIMEOUT: "-1s" must be greater than 0`},
		{env{"CALLBUS_EXTERNAL_IP": "example.com"}, `CALLBUS_EXTERNAL_IP: "example.com" is not an IP address`},
		{env{"CALLBUS_EXTERNAL_IP": "ff02::1"}, `CALLBUS_EXTERNAL_IP: "ff02::1" cannot be advertised to peers`},
		{env{"CALLBUS_SIP_TRANSPORTS": " "}, `CALLBUS_SIP_TRANSPORTS: is empty; unset it to use the default "udp,tcp"`},
		{env{"CALLBUS_SIP_TRANSPORTS": "udp, TLS"}, `CALLBUS_SIP_TRANSPORTS: "udp, TLS": each transport must be udp or tcp`},
		{env{"CALLBUS_LOG_LEVEL": ""}, `CALLBUS_LOG_LEVEL: is empty; unset it to use the default "info"`},
		{env{"CALLBUS_NODE_ID": ""}, `CALLBUS_NODE_ID: is empty; unset it to derive the id from the host name`},
		{env{"CALLBUS_API_KEYS": "   "}, `CALLBUS_API_KEYS: entry 1 contains a space or a character outside printable ASCII`},
	} {
		t.Run(caseValue(tc.env), func(t *testing.T) {
			_, err := load(t, tc.env)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Load = %v, want %s", err, tc.want)
			}
		})
	}
}

// TestLoadEmptyValues sets each variable to "": envconfig reads that as
// set, not as unset. A variable with a default (or NODE_ID) then stops
// start-up, saying how to get the default; one without reads as none.
func TestLoadEmptyValues(t *testing.T) {
	base, err := load(t, env{"CALLBUS_NODE_ID": "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars() {
		t.Run(v.Name, func(t *testing.T) {
			e := env{EnvPrefix + v.Name: ""}
			if v.Name != "NODE_ID" {
				e["CALLBUS_NODE_ID"] = "a"
			}
			c, err := load(t, e)
			if v.Default != "" || v.Name == "NODE_ID" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Var != EnvPrefix+v.Name || !strings.Contains(ce.Msg, "is empty; unset it") {
					t.Errorf("%s%s=\"\": Load = %v, want the advice to unset it", EnvPrefix, v.Name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s%s=\"\": %v", EnvPrefix, v.Name, err)
			}
			if !reflect.DeepEqual(c, base) {
				t.Errorf("%s%s=\"\" differs from leaving it unset:\n%+v\nwant\n%+v", EnvPrefix, v.Name, c, base)
			}
		})
	}
}

// TestLoadIgnoresUnprefixed sets every variable's bare name (LOG_LEVEL,
// HTTP_ADDR, ...) to a bad value: envconfig falls back to the bare tag
// name when given a prefix, which Load must not let happen.
func TestLoadIgnoresUnprefixed(t *testing.T) {
	want, err := load(t, env{"CALLBUS_NODE_ID": "a"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars() {
		t.Setenv(v.Name, "0.0.0.0:1,bad value")
	}
	got, err := load(t, env{"CALLBUS_NODE_ID": "a"})
	if err != nil {
		t.Fatalf("Load read an unprefixed variable: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load read an unprefixed variable:\n%+v\nwant\n%+v", got, want)
	}
}

// TestFromEnvconfig covers envconfig errors no variable can produce today:
// a secret that fails to parse, and an error that is not a ParseError.
func TestFromEnvconfig(t *testing.T) {
	err := fromEnvconfig(&envconfig.ParseError{
		KeyName: "CALLBUS_API_KEYS", FieldName: "APIKeys", TypeName: "int",
		Value: "sup3r-secret-value", Err: errors.New("bad"),
	})
	if got, want := err.Error(), "CALLBUS_API_KEYS: the value is not an integer"; got != want {
		t.Errorf("secret: %q, want %q", got, want)
	}
	err = fromEnvconfig(&envconfig.ParseError{
		KeyName: "CALLBUS_X", FieldName: "X", TypeName: "main.thing", Value: "v", Err: errors.New("bad"),
	})
	if got, want := err.Error(), `CALLBUS_X: "v" is not a valid main.thing`; got != want {
		t.Errorf("other type: %q, want %q", got, want)
	}
	err = fromEnvconfig(envconfig.ErrInvalidSpecification)
	if msg := err.Error(); !strings.Contains(msg, "CALLBUS_") || strings.Contains(msg, "\n") {
		t.Errorf("other error: %q", msg)
	}
}

// TestSpecTags checks the tags Vars and envconfig share: every field has a
// full CALLBUS_ name and a meaning, and exactly the secrets are marked.
func TestSpecTags(t *testing.T) {
	st := reflect.TypeFor[spec]()
	for i := range st.NumField() {
		f := st.Field(i)
		name := f.Tag.Get("envconfig")
		if !strings.HasPrefix(name, EnvPrefix) || strings.ToUpper(name) != name {
			t.Errorf("field %s: envconfig tag %q is not an upper-case %s name", f.Name, name, EnvPrefix)
		}
		for _, tag := range []string{"required", "split_words", "ignored"} {
			if _, ok := f.Tag.Lookup(tag); ok {
				t.Errorf("field %s has a %s tag, which Vars does not describe", f.Name, tag)
			}
		}
	}
	var secrets []string
	for _, v := range Vars() {
		if v.Secret {
			secrets = append(secrets, v.Name)
		}
	}
	if want := []string{"API_KEYS", "WEBHOOK_SECRET"}; !reflect.DeepEqual(secrets, want) {
		t.Errorf("secrets %q, want %q", secrets, want)
	}
}
