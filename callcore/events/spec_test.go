package events_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/callbus/callbus/callcore/events"
)

// specTypes is DESIGN.md §3: every channel and its event types, in order.
var specTypes = []struct {
	channel string
	types   string
}{
	{"session_to_dialog", "InitiateCall AcceptCall RejectCall TerminateSession HoldSession ResumeSession TransferCall SendDtmf TransferProgress RegisterAccount UnregisterAccount"},
	{"dialog_to_session", "IncomingCall CallStateChanged CallEstablished CallTerminated DtmfReceived DialogError ReinviteReceived TransferRequested RegistrationUpdated"},
	{"transport_to_dialog", "SipMessageReceived SipResponseReceived TransportError RegistrationStatusUpdate"},
	{"dialog_to_transport", "SendSipMessage SendSipResponse RegisterEndpoint UnregisterEndpoint"},
	{"session_to_media", "StartMediaStream StopMediaStream UpdateMediaStream HoldMedia ResumeMedia StartRecording StopRecording PlayAudio StopAudio SendDtmf BridgeMedia UnbridgeMedia"},
	{"media_to_session", "MediaStreamStarted MediaStreamStopped MediaQualityUpdate RecordingStarted RecordingStopped AudioPlaybackFinished MediaError DtmfDetected"},
	{"media_to_rtp", "StartRtpStream StopRtpStream SendRtpPacket UpdateRtpStream"},
	{"rtp_to_media", "RtpStreamStarted RtpStreamStopped RtpPacketReceived RtpStatisticsUpdate RtpError"},
	{"api_to_session", "MakeCall AnswerCall RejectCall HangupCall HoldCall ResumeCall TransferCall SendDtmf PlayAudio StopAudio StartRecording StopRecording BridgeCalls Register Unregister"},
	{"session_to_app", "CallCreated CallRinging CallAnswered CallHeld CallResumed CallTransferred CallBridged DtmfReceived PlaybackFinished RecordingFinished CallEnded RegistrationChanged CallUpdated"},
}

// specFields is the data of every event, from DESIGN.md §3 completed by
// the lead's field list; [brackets] mark optional fields, and {…} the
// fields of a nested object or of the items of an array.
var specFields = map[string]string{
	"session_to_dialog/InitiateCall":     "session_id from to sdp_offer headers{name value}",
	"session_to_dialog/AcceptCall":       "session_id sdp_answer",
	"session_to_dialog/RejectCall":       "session_id status_code reason",
	"session_to_dialog/TerminateSession": "session_id reason",
	"session_to_dialog/HoldSession":      "session_id [sdp_offer]",
	"session_to_dialog/ResumeSession":    "session_id sdp_offer",
	"session_to_dialog/TransferCall":     "session_id target transfer_type [replaces_session_id]",
	"session_to_dialog/SendDtmf":         "session_id tones",
	// ★ added with the signalling layers (issue 3):
	"session_to_dialog/TransferProgress":  "session_id status_code [reason]",
	"session_to_dialog/RegisterAccount":   "registration_id registrar aor [username] [password] [expires]",
	"session_to_dialog/UnregisterAccount": "registration_id",

	"dialog_to_session/IncomingCall":        "session_id call_id from to sdp_offer headers{name value}",
	"dialog_to_session/CallStateChanged":    "session_id new_state [reason]",
	"dialog_to_session/CallEstablished":     "session_id sdp_answer",
	"dialog_to_session/CallTerminated":      "session_id reason",
	"dialog_to_session/DtmfReceived":        "session_id tones",
	"dialog_to_session/DialogError":         "session_id error [error_code]",
	"dialog_to_session/ReinviteReceived":    "session_id sdp",
	"dialog_to_session/TransferRequested":   "session_id refer_to [replaces]",
	"dialog_to_session/RegistrationUpdated": "registration_id aor status [expires] [error]",

	"transport_to_dialog/SipMessageReceived":  "source method headers{name value} body transaction_id [request_uri] [transport]",
	"transport_to_dialog/SipResponseReceived": "transaction_id status_code reason_phrase headers{name value} body",
	// ★ error_code, added with the typed vocabularies: a TransportErrorCode.
	"transport_to_dialog/TransportError":           "error [error_code] [transaction_id]",
	"transport_to_dialog/RegistrationStatusUpdate": "uri status [expires] [registration_id] [error]",

	"dialog_to_transport/SendSipMessage":     "destination method headers{name value} body [transaction_id]",
	"dialog_to_transport/SendSipResponse":    "transaction_id status_code reason_phrase headers{name value} body",
	"dialog_to_transport/RegisterEndpoint":   "uri [expires] [contact] [username] [password] [registrar] [registration_id]",
	"dialog_to_transport/UnregisterEndpoint": "uri",

	"session_to_media/StartMediaStream":  "session_id [local_sdp] [remote_sdp] media_config{codecs [ptime_ms] [direction] [builtin]}",
	"session_to_media/StopMediaStream":   "session_id",
	"session_to_media/UpdateMediaStream": "session_id local_sdp remote_sdp",
	"session_to_media/HoldMedia":         "session_id",
	"session_to_media/ResumeMedia":       "session_id",
	"session_to_media/StartRecording":    "session_id file_path format",
	"session_to_media/StopRecording":     "session_id",
	"session_to_media/PlayAudio":         "session_id file_path [loop_count]",
	"session_to_media/StopAudio":         "session_id",
	"session_to_media/SendDtmf":          "session_id tones duration_ms",
	"session_to_media/BridgeMedia":       "session_id peer_session_id",
	"session_to_media/UnbridgeMedia":     "session_id",

	"media_to_session/MediaStreamStarted":    "session_id local_port codec local_sdp",
	"media_to_session/MediaStreamStopped":    "session_id reason",
	"media_to_session/MediaQualityUpdate":    "session_id quality_metrics{mos packet_loss_pct jitter_ms [rtt_ms] packets_sent packets_received}",
	"media_to_session/RecordingStarted":      "session_id file_path",
	"media_to_session/RecordingStopped":      "session_id file_path duration_ms",
	"media_to_session/AudioPlaybackFinished": "session_id",
	"media_to_session/MediaError":            "session_id error [error_code]",
	"media_to_session/DtmfDetected":          "session_id digit duration_ms",

	"media_to_rtp/StartRtpStream":  "session_id local_port remote_address remote_port payload_type codec",
	"media_to_rtp/StopRtpStream":   "session_id",
	"media_to_rtp/SendRtpPacket":   "session_id payload timestamp sequence_number [payload_type] [marker]",
	"media_to_rtp/UpdateRtpStream": "session_id remote_address remote_port",

	"rtp_to_media/RtpStreamStarted":    "session_id local_port",
	"rtp_to_media/RtpStreamStopped":    "session_id reason",
	"rtp_to_media/RtpPacketReceived":   "session_id payload timestamp sequence_number payload_type [marker]",
	"rtp_to_media/RtpStatisticsUpdate": "session_id stats{packets_sent packets_received octets_sent octets_received packets_lost jitter_ms [rtt_ms]}",
	// ★ error_code, added with the typed vocabularies: an RtpErrorCode (error still starts with it).
	"rtp_to_media/RtpError": "session_id error [error_code]",

	"api_to_session/MakeCall":       "session_id from to [headers{name value}] [webhook_url] [client_state] [ring_timeout_s]",
	"api_to_session/AnswerCall":     "session_id",
	"api_to_session/RejectCall":     "session_id status_code [reason]",
	"api_to_session/HangupCall":     "session_id [reason]",
	"api_to_session/HoldCall":       "session_id",
	"api_to_session/ResumeCall":     "session_id",
	"api_to_session/TransferCall":   "session_id target transfer_type [consult_session_id]",
	"api_to_session/SendDtmf":       "session_id digits [method] [duration_ms]",
	"api_to_session/PlayAudio":      "session_id [file] [url] [loop_count]",
	"api_to_session/StopAudio":      "session_id",
	"api_to_session/StartRecording": "session_id [max_duration_s]",
	"api_to_session/StopRecording":  "session_id",
	"api_to_session/BridgeCalls":    "session_id peer_session_id",
	"api_to_session/Register":       "registration_id registrar aor username password [expires]",
	"api_to_session/Unregister":     "registration_id",

	"session_to_app/CallCreated":         "session_id direction from to [sip_call_id] [client_state]",
	"session_to_app/CallRinging":         "session_id",
	"session_to_app/CallAnswered":        "session_id [codec]",
	"session_to_app/CallHeld":            "session_id [by]",
	"session_to_app/CallResumed":         "session_id [by]",
	"session_to_app/CallTransferred":     "session_id target transfer_type",
	"session_to_app/CallBridged":         "session_id peer_session_id",
	"session_to_app/DtmfReceived":        "session_id digits method",
	"session_to_app/PlaybackFinished":    "session_id [file] [reason]",
	"session_to_app/RecordingFinished":   "session_id recording_id file_path duration_ms",
	"session_to_app/CallEnded":           "session_id reason [sip_status] [message]",
	"session_to_app/RegistrationChanged": "registration_id aor status [expires] [error]",
	// ★ added with the call resource on the bus (issue 9):
	"session_to_app/CallUpdated": "session_id call{id direction from to state created_at [answered_at] [ended_at] [end_reason] [sip_status] [sip_call_id] held media{[codec] [local_rtp] [remote_rtp] [quality{mos packet_loss_pct jitter_ms [rtt_ms] packets_sent packets_received}]} [recording_id] [bridged_with] [client_state]}",
}

func TestCatalogueMatchesDesign(t *testing.T) {
	cat := events.Catalogue()
	var got, want []string
	for _, ch := range cat.Channels {
		for _, ev := range ch.Events {
			got = append(got, ch.Name+"/"+ev.Type)
		}
	}
	var wantChannels []string
	for _, s := range specTypes {
		wantChannels = append(wantChannels, s.channel)
		for _, typ := range strings.Fields(s.types) {
			want = append(want, s.channel+"/"+typ)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("catalogue events\n%v\nwant (DESIGN.md §3)\n%v", got, want)
	}
	if got := events.Channels(); !slices.Equal(got, wantChannels) {
		t.Errorf("Channels() = %v, want %v", got, wantChannels)
	}
	if len(specFields) != len(want) {
		t.Errorf("specFields has %d events, DESIGN.md §3 %d", len(specFields), len(want))
	}
	for _, ch := range cat.Channels {
		for _, ev := range ch.Events {
			spec, ok := specFields[ch.Name+"/"+ev.Type]
			if !ok {
				t.Errorf("%s/%s: no field spec", ch.Name, ev.Type)
				continue
			}
			if got := fieldSpec(ev.Fields); got != spec {
				t.Errorf("%s/%s fields\n got %s\nwant %s", ch.Name, ev.Type, got, spec)
			}
		}
	}
}

// fieldSpec writes fields in the notation of specFields.
func fieldSpec(fields []events.FieldDoc) string {
	var parts []string
	for _, f := range fields {
		s := f.Name
		switch {
		case len(f.Fields) > 0:
			s += "{" + fieldSpec(f.Fields) + "}"
		case f.Items != nil && len(f.Items.Fields) > 0:
			s += "{" + fieldSpec(f.Items.Fields) + "}"
		}
		if f.Optional {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// The catalogue is derived by reflection; check it against what
// encoding/json actually writes: the names and order of a filled event, and
// the optional fields, which a zero event leaves out.
func TestCatalogueMatchesJSON(t *testing.T) {
	cat := events.Catalogue()
	all := events.All()
	i := 0
	f := &filler{}
	for _, ch := range cat.Channels {
		for _, doc := range ch.Events {
			ev := all[i]
			i++
			if ev.Channel() != ch.Name || ev.Type() != doc.Type {
				t.Fatalf("All()[%d] is %s, catalogue says %s/%s", i-1, name(ev), ch.Name, doc.Type)
			}
			if want := reflect.TypeOf(ev).Elem().String(); doc.GoType != want {
				t.Errorf("%s: go_type %q, want %q", name(ev), doc.GoType, want)
			}
			filled, err := json.Marshal(f.fill(ev))
			if err != nil {
				t.Fatal(err)
			}
			checkFields(t, name(ev), doc.Fields, reflect.TypeOf(ev).Elem(), filled)
		}
	}
	if i != len(all) {
		t.Errorf("catalogue has %d events, All() %d", i, len(all))
	}
}

// checkFields compares docs with the JSON object filled, the encoding of a
// goType with every field set, and with the encoding of a zero goType.
func checkFields(t *testing.T, path string, docs []events.FieldDoc, goType reflect.Type, filled []byte) {
	t.Helper()
	keys, values := objectKeys(t, filled)
	var names []string
	for _, d := range docs {
		names = append(names, d.Name)
	}
	if !slices.Equal(names, keys) {
		t.Errorf("%s: catalogue fields %v, json writes %v", path, names, keys)
		return
	}
	zero, err := json.Marshal(reflect.New(goType).Interface())
	if err != nil {
		t.Fatal(err)
	}
	var zeroValues map[string]json.RawMessage
	if err := json.Unmarshal(zero, &zeroValues); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i, d := range docs {
		p := path + "." + d.Name
		_, present := zeroValues[d.Name]
		if d.Optional == present {
			t.Errorf("%s: optional=%v but a zero value is present=%v in json", p, d.Optional, present)
		}
		checkType(t, p, d, values[i])
		ft := goField(goType, d.Name)
		if ft == nil {
			t.Errorf("%s: no Go field with this json name", p)
			continue
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if d.Type == "object" {
			checkFields(t, p, d.Fields, ft, values[i])
		}
		if d.Type == "array" && d.Items.Type == "object" {
			var items []json.RawMessage
			if err := json.Unmarshal(values[i], &items); err != nil || len(items) == 0 {
				t.Fatalf("%s: want a non-empty array, got %s", p, values[i])
			}
			checkFields(t, p+"[0]", d.Items.Fields, ft.Elem(), items[0])
		}
	}
}

// goField returns the type of the field of struct type st whose json name
// is name, looking into embedded structs, or nil.
func goField(st reflect.Type, name string) reflect.Type {
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		tagName, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Anonymous && tagName == "" && sf.Type.Kind() == reflect.Struct {
			if ft := goField(sf.Type, name); ft != nil {
				return ft
			}
			continue
		}
		if tagName == name || tagName == "" && sf.Name == name {
			return sf.Type
		}
	}
	return nil
}

// checkType checks that the JSON value v has the catalogue type of d.
func checkType(t *testing.T, path string, d events.FieldDoc, v json.RawMessage) {
	t.Helper()
	var x any
	dec := json.NewDecoder(strings.NewReader(string(v)))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ok := false
	switch x := x.(type) {
	case string:
		ok = d.Type == "string"
	case bool:
		ok = d.Type == "boolean"
	case json.Number:
		_, err := x.Int64()
		ok = d.Type == "number" || d.Type == "integer" && err == nil
	case map[string]any:
		ok = d.Type == "object"
	case []any:
		ok = d.Type == "array" && d.Items != nil
	}
	if !ok {
		t.Errorf("%s: catalogue type %q but json value %s", path, d.Type, v)
	}
}

// objectKeys returns the keys of a JSON object in order, and their values.
func objectKeys(t *testing.T, b []byte) ([]string, []json.RawMessage) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", b)
	}
	var keys []string
	var values []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		values = append(values, v)
	}
	return keys, values
}

func TestCatalogueFlags(t *testing.T) {
	cat := events.Catalogue()
	if cat != events.Catalogue() {
		t.Error("Catalogue() built twice")
	}
	var dataPlane []string
	for _, ch := range cat.Channels {
		for _, ev := range ch.Events {
			if ev.DataPlane {
				dataPlane = append(dataPlane, ev.Type)
			}
			if ev.Request != (ch.Name == events.ChannelAPIToSession) {
				t.Errorf("%s/%s: request=%v", ch.Name, ev.Type, ev.Request)
			}
		}
	}
	if want := []string{"SendRtpPacket", "RtpPacketReceived"}; !slices.Equal(dataPlane, want) {
		t.Errorf("data-plane events %v, want %v", dataPlane, want)
	}
	for _, ev := range events.All() {
		if events.IsDataPlane(ev) != slices.Contains(dataPlane, ev.Type()) {
			t.Errorf("%s: IsDataPlane=%v disagrees with the catalogue", name(ev), events.IsDataPlane(ev))
		}
	}

	// Spot-check formats, which the json comparison cannot see.
	formats := map[string]string{
		"media_to_rtp/SendRtpPacket.payload":                  "string/base64",
		"media_to_rtp/SendRtpPacket.sequence_number":          "integer/uint16",
		"media_to_rtp/SendRtpPacket.timestamp":                "integer/uint32",
		"media_to_rtp/SendRtpPacket.marker":                   "boolean/",
		"api_to_session/Register.password":                    "string/password",
		"media_to_session/MediaQualityUpdate.quality_metrics": "object/",
		"session_to_dialog/InitiateCall.headers":              "array/",
	}
	for _, ch := range cat.Channels {
		for _, ev := range ch.Events {
			for _, f := range ev.Fields {
				if want, ok := formats[ch.Name+"/"+ev.Type+"."+f.Name]; ok {
					if got := f.Type + "/" + f.Format; got != want {
						t.Errorf("%s/%s.%s is %s, want %s", ch.Name, ev.Type, f.Name, got, want)
					}
					delete(formats, ch.Name+"/"+ev.Type+"."+f.Name)
				}
			}
		}
	}
	if len(formats) > 0 {
		t.Errorf("fields not found: %v", formats)
	}
}

func TestKeys(t *testing.T) {
	f := &filler{}
	for _, ev := range events.All() {
		if k := ev.Key(); k != "" && k != "transport" {
			t.Errorf("%s: zero event has key %q", name(ev), k)
		}
		f.fill(ev)
		k := ev.Key()
		if k == "" {
			t.Errorf("%s: filled event has an empty key", name(ev))
		}
		if s, ok := ev.(events.SessionScoped); ok && k != s.Session() {
			t.Errorf("%s: key %q, want the session id %q", name(ev), k, s.Session())
		}
	}

	hdr := events.Headers{{Name: "Via", Value: "v"}, {Name: "i", Value: "call-1"}}
	cases := []struct {
		name string
		ev   events.Event
		want string
	}{
		{"event=SipMessageReceived/call_id", &events.SipMessageReceived{Headers: hdr, TransactionID: "t1"}, "call-1"},
		{"event=SipMessageReceived/no_call_id", &events.SipMessageReceived{TransactionID: "t1"}, "t1"},
		{"event=SipResponseReceived/call_id", &events.SipResponseReceived{Headers: hdr, TransactionID: "t1"}, "call-1"},
		{"event=SipResponseReceived/no_call_id", &events.SipResponseReceived{TransactionID: "t1"}, "t1"},
		{"event=TransportError/transaction", &events.TransportError{TransactionID: "t1"}, "t1"},
		{"event=TransportError/none", &events.TransportError{Error: "x"}, "transport"},
		{"event=RegistrationStatusUpdate", &events.RegistrationStatusUpdate{URI: "sip:a@b"}, "sip:a@b"},
		{"event=SendSipMessage/call_id", &events.SendSipMessage{Headers: hdr, TransactionID: "t1", Destination: "d"}, "call-1"},
		{"event=SendSipMessage/transaction", &events.SendSipMessage{TransactionID: "t1", Destination: "d"}, "t1"},
		{"event=SendSipMessage/destination", &events.SendSipMessage{Destination: "d"}, "d"},
		{"event=SendSipResponse/call_id", &events.SendSipResponse{Headers: hdr, TransactionID: "t1"}, "call-1"},
		{"event=SendSipResponse/no_call_id", &events.SendSipResponse{TransactionID: "t1"}, "t1"},
		{"event=RegisterEndpoint", &events.RegisterEndpoint{URI: "sip:a@b"}, "sip:a@b"},
		{"event=UnregisterEndpoint", &events.UnregisterEndpoint{URI: "sip:a@b"}, "sip:a@b"},
		{"event=Register", &events.CmdRegister{RegistrationID: "r1", AOR: "sip:a@b"}, "r1"},
		{"event=Unregister", &events.CmdUnregister{RegistrationID: "r1"}, "r1"},
		{"event=RegistrationChanged", &events.RegistrationChanged{RegistrationID: "r1", AOR: "sip:a@b"}, "r1"},
		{"event=CallEnded", &events.CallEnded{SessionRef: events.SessionRef{SessionID: "s1"}}, "s1"},
	}
	for _, c := range cases {
		if got := c.ev.Key(); got != c.want {
			t.Errorf("%s: Key() = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestHeaders(t *testing.T) {
	h := events.Headers{
		{Name: "v", Value: "via-1"},
		{Name: "Via", Value: "via-2"},
		{Name: "CALL-ID", Value: "abc"},
		{Name: "From", Value: "<sip:a@b>"},
		{Name: "t", Value: "<sip:c@d>"},
	}
	gets := map[string]string{
		"Call-ID": "abc", "call-id": "abc", "i": "abc", "I": "abc",
		"via": "via-1", "V": "via-1",
		"f": "<sip:a@b>", "FROM": "<sip:a@b>",
		"To":      "<sip:c@d>",
		"Contact": "", "m": "", "x": "",
	}
	for name, want := range gets {
		if got := h.Get(name); got != want {
			t.Errorf("Get(%q) = %q, want %q", name, got, want)
		}
	}
	if got := h.Values("VIA"); !slices.Equal(got, []string{"via-1", "via-2"}) {
		t.Errorf("Values(VIA) = %v", got)
	}
	if got := h.Values("Route"); got != nil {
		t.Errorf("Values(Route) = %v, want none", got)
	}
	if got := events.Headers(nil).Get("Call-ID"); got != "" {
		t.Errorf("nil Headers Get = %q", got)
	}
}
