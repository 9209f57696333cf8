package transport

import (
	"errors"
	"strings"
	"testing"
)

func TestUnparsableRequest(t *testing.T) {
	req := "REFER sip:bob@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>;tag=b\r\n" +
		"Call-ID: c1\r\nCSeq: 2 REFER\r\nRefer-To: just words\r\nContent-Length: 0\r\n\r\n"
	res := string(unparsableRequest([]byte(req), errors.New(`invalid uri "scheme"`)))
	for _, want := range []string{"SIP/2.0 400 Bad Request\r\n",
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n", "To: <sip:bob@127.0.0.1>;tag=b\r\n",
		"Call-ID: c1\r\n", "CSeq: 2 REFER\r\n", `Warning: 399 callbus "unparsable request: invalid uri 'scheme'"`,
		"Content-Length: 0\r\n\r\n"} {
		if !strings.Contains(res, want) {
			t.Errorf("400 lacks %q:\n%s", want, res)
		}
	}
	if strings.Contains(res, "Refer-To") {
		t.Errorf("400 copies a header it should not:\n%s", res)
	}
	for name, garbage := range map[string]string{
		"not-sip":  "hello world\r\n\r\n",
		"no-via":   "BYE sip:b@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n",
		"response": "SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
		"ack":      "ACK sip:b@h SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nX: \x00\r\n\r\n",
	} {
		if res := unparsableRequest([]byte(garbage), errors.New("x")); res != nil {
			t.Errorf("%s: answered %q; garbage gets no answer", name, res)
		}
	}
}

func FuzzUnparsableRequest(f *testing.F) {
	f.Add([]byte("INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: a;tag=1\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := unparsableRequest(data, errors.New("x"))
		if res != nil && !strings.HasPrefix(string(res), "SIP/2.0 400 Bad Request\r\n") {
			t.Fatalf("answer %q", res)
		}
	})
}
