package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbus/callbus/callcore"
	"github.com/callbus/callbus/callcore/calltest"
	"github.com/callbus/callbus/httpapi"
	"github.com/callbus/callbus/internal/bustest"
)

// TestSeedCalls fills a data directory with calls for scripts/rest-load.sh:
// with CALLBUS_SEED_DIR set it starts a node on that directory and places
// CALLBUS_SEED_CALLS calls (default 1000) through REST to a phone that
// answers, hanging each up, then stops the node. Without the variable it
// is skipped.
func TestSeedCalls(t *testing.T) {
	dir := os.Getenv("CALLBUS_SEED_DIR")
	if dir == "" {
		t.Skip("set CALLBUS_SEED_DIR (scripts/rest-load.sh does) to seed a data dir")
	}
	total := 1000
	if s := os.Getenv("CALLBUS_SEED_CALLS"); s != "" {
		var err error
		if total, err = strconv.Atoi(s); err != nil || total < 1 {
			t.Fatalf("CALLBUS_SEED_CALLS %q: want a positive integer", s)
		}
	}
	m, base, client, _ := openMain(t, env{"CALLBUS_DATA_DIR": dir, "CALLBUS_RATE_LIMIT": "0", "CALLBUS_LOG_LEVEL": "warn",
		"CALLBUS_API_KEYS": restKey})
	api := newREST(t, m, restKey)
	phone := calltest.StartPhone(t, calltest.WithUser("load"), calltest.WithPolicy(calltest.AutoAnswer()))
	// The workers use a plain client (seeding is not a test of the API)
	// and report errors instead of failing from their goroutines.
	send := func(method, path, body string) (callcore.Call, error) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			return callcore.Call{}, err
		}
		req.Header.Set("Authorization", "Bearer "+restKey)
		resp, err := client.Do(req)
		if err != nil {
			return callcore.Call{}, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return callcore.Call{}, fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, raw)
		}
		var c callcore.Call
		return c, json.Unmarshal(raw, &c)
	}
	one := func() error {
		c, err := send("POST", "/v1/calls", `{"to":"`+phone.URI("load")+`"}`)
		if err != nil {
			return err
		}
		for deadline := time.Now().Add(10 * time.Second); c.State != callcore.StateActive; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("call %s is %s after 10s", c.ID, c.State)
			}
			if c, err = send("GET", "/v1/calls/"+c.ID, ""); err != nil && !strings.Contains(err.Error(), "= 404") {
				return err
			}
		}
		_, err = send("DELETE", "/v1/calls/"+c.ID, "")
		return err
	}
	start := time.Now()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for !failed.Load() && next.Add(1) <= int64(total) {
				if err := one(); err != nil {
					failed.Store(true)
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	bustest.CheckFor(t, 60*time.Second, func() error {
		for _, s := range []string{"initiating", "ringing", "active", "terminating"} {
			if l := getJSON[httpapi.CallList](api, "/v1/calls?limit=1&state="+s); len(l.Calls) > 0 {
				return fmt.Errorf("call %s is still %s", l.Calls[0].ID, s)
			}
		}
		return nil
	})
	t.Logf("seeded %d calls into %s in %v", total, dir, time.Since(start).Round(time.Millisecond))
}
