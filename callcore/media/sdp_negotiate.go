package media

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	pionsdp "github.com/pion/sdp/v3"

	"github.com/callbus/callbus/callcore/events"
	"github.com/callbus/callbus/callcore/sdp"
)

// offerDTMFPayloadType is the payload type of telephone-event in our offers.
const offerDTMFPayloadType = 101

// defaultPtimeMS is the packetization time when MediaConfig gives none.
const defaultPtimeMS = 20

// mediaError is a failure media reports as MediaError: a code of the
// contract (ErrorCode*) and a message for a person.
type mediaError struct {
	code events.MediaErrorCode
	msg  string
}

func (e *mediaError) Error() string { return string(e.code) + ": " + e.msg }

func errorf(code events.MediaErrorCode, format string, args ...any) *mediaError {
	return &mediaError{code: code, msg: fmt.Sprintf(format, args...)}
}

// negotiated is the outcome of an offer/answer exchange, as far as media
// is concerned: the codec we send and expect, and the direction we send.
type negotiated struct {
	codec     string // sdp.PCMU or sdp.PCMA
	pt        uint8
	dtmfPT    int           // telephone-event's payload type, or -1
	direction sdp.Direction // ours
}

// answer is an answer planned for a remote offer: what was negotiated,
// where the far end receives, and the offer itself, whose m= lines the
// answer mirrors.
type answer struct {
	negotiated
	remote audioLine
	offer  sdp.Description
	ptime  int
}

// offer is an offer planned from a MediaConfig.
type offer struct {
	codecs    []string // in preference order
	direction sdp.Direction
	ptime     int
}

// allowedCodecs returns the codecs of cfg that media supports, in cfg's
// order; an empty list allows PCMU and PCMA. Names are matched without
// regard to case; telephone-event is always negotiated and may be listed.
// It returns an incompatible_sdp error when cfg lists codecs but none of
// them is supported.
func allowedCodecs(cfg events.MediaConfig) ([]string, error) {
	if len(cfg.Codecs) == 0 {
		return []string{sdp.PCMU, sdp.PCMA}, nil
	}
	var out []string
	for _, c := range cfg.Codecs {
		for _, known := range []string{sdp.PCMU, sdp.PCMA} {
			if strings.EqualFold(c, known) && !slices.Contains(out, known) {
				out = append(out, known)
			}
		}
	}
	if len(out) == 0 {
		return nil, errorf(events.MediaErrIncompatibleSDP, "media_config lists no supported codec (%s; supported: PCMU, PCMA)",
			strings.Join(cfg.Codecs, ", "))
	}
	return out, nil
}

// configDirection returns cfg's direction, "" meaning sendrecv, or an
// invalid_config error.
func configDirection(cfg events.MediaConfig) (sdp.Direction, error) {
	switch d := sdp.Direction(cfg.Direction); {
	case d == "":
		return sdp.SendRecv, nil
	case d.Valid():
		return d, nil
	}
	return "", errorf(events.MediaErrInvalidConfig, "media_config direction %q is not sendrecv, sendonly, recvonly or inactive",
		cfg.Direction)
}

// configPtime returns cfg's packetization time, 0 meaning the default, or
// an invalid_config error.
func configPtime(cfg events.MediaConfig) (int, error) {
	switch {
	case cfg.PtimeMS == 0:
		return defaultPtimeMS, nil
	case cfg.PtimeMS < 10 || cfg.PtimeMS > 200 || cfg.PtimeMS%10 != 0:
		return 0, errorf(events.MediaErrInvalidConfig, "media_config ptime_ms %d is not a multiple of 10 in 10-200", cfg.PtimeMS)
	}
	return cfg.PtimeMS, nil
}

// answerDirection is the direction of an answer to an offer that says
// offered, when we would like ours (RFC 3264 §6.1): we send only if the
// far end receives, and receive only if it sends.
func answerDirection(offered, ours sdp.Direction) sdp.Direction {
	return ours.Intersect(offered.Mirror())
}

// negotiateAnswer plans the answer to a remote offer under cfg: the first
// offered codec among PCMU and PCMA that cfg allows, telephone-event with
// the offer's payload type when offered, and the mirrored direction. Its
// errors are *mediaError: incompatible_sdp for an offer that does not
// parse, has no usable audio stream or no common codec; invalid_config
// for a bad cfg.
func negotiateAnswer(raw string, cfg events.MediaConfig) (*answer, error) {
	allowed, err := allowedCodecs(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := configDirection(cfg)
	if err != nil {
		return nil, err
	}
	ptime, err := configPtime(cfg)
	if err != nil {
		return nil, err
	}
	d, err := sdp.Parse(raw)
	if err != nil {
		return nil, errorf(events.MediaErrIncompatibleSDP, "remote offer: %v", err)
	}
	remote, err := readAudio(d, true)
	if err != nil {
		return nil, errorf(events.MediaErrIncompatibleSDP, "remote offer: %v", err)
	}
	a := &answer{remote: remote, offer: d, ptime: ptime,
		negotiated: negotiated{dtmfPT: -1, direction: answerDirection(remote.direction, dir)}}
	for _, f := range remote.formats {
		if a.codec == "" && slices.Contains(allowed, f.Name) {
			a.codec, a.pt = f.Name, f.PT
		}
		if a.dtmfPT < 0 && f.Name == sdp.TelephoneEvent {
			a.dtmfPT = int(f.PT)
		}
	}
	if a.codec == "" {
		return nil, errorf(events.MediaErrIncompatibleSDP, "no common codec: the offer has %s, media_config allows %s",
			formatNames(remote.formats), strings.Join(allowed, ", "))
	}
	return a, nil
}

func formatNames(fs []sdp.Codec) string {
	var names []string
	for _, f := range fs {
		if f.Name != sdp.TelephoneEvent {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		return "neither PCMU nor PCMA"
	}
	return strings.Join(names, ", ")
}

// newOffer plans an offer under cfg: the allowed codecs in cfg's order with
// their static payload types, telephone-event as 101, cfg's direction.
func newOffer(cfg events.MediaConfig) (*offer, error) {
	allowed, err := allowedCodecs(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := configDirection(cfg)
	if err != nil {
		return nil, err
	}
	ptime, err := configPtime(cfg)
	if err != nil {
		return nil, err
	}
	return &offer{codecs: allowed, direction: dir, ptime: ptime}, nil
}

// origin identifies our SDP in its o= line.
type origin struct {
	ip      netip.Addr
	id      uint64
	version uint64
}

// description returns a session description with our o=, s=, c= and t=.
func (o origin) description() *pionsdp.SessionDescription {
	ip := o.ip.Unmap().WithZone("")
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	return &pionsdp.SessionDescription{
		Origin: pionsdp.Origin{Username: "callbus", SessionID: o.id, SessionVersion: o.version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip.String()},
		SessionName: "callbus",
		ConnectionInformation: &pionsdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType,
			Address: &pionsdp.Address{Address: ip.String()}},
		TimeDescriptions: []pionsdp.TimeDescription{{Timing: pionsdp.Timing{}}},
	}
}

// audioMedia returns our audio m= section on port.
func audioMedia(port int, codecs []sdp.Codec, ptime int, direction sdp.Direction) *pionsdp.MediaDescription {
	md := &pionsdp.MediaDescription{MediaName: pionsdp.MediaName{Media: "audio", Port: pionsdp.RangedPort{Value: port},
		Protos: []string{"RTP", "AVP"}}}
	for _, c := range codecs {
		fmtp := ""
		if c.Name == sdp.TelephoneEvent {
			fmtp = sdp.TelephoneEventFmtp
		}
		md.WithCodec(c.PT, c.Name, 8000, 0, fmtp)
	}
	md.WithValueAttribute("ptime", strconv.Itoa(ptime))
	md.WithPropertyAttribute(string(direction))
	return md
}

// sdp returns the answer as SDP text for our RTP port: one m= line per
// offered one, in order (RFC 3264 §6), the audio stream accepted and every
// other stream rejected with port 0.
func (a *answer) sdp(o origin, port int) (string, error) {
	sd := o.description()
	for i, m := range a.offer.Media {
		if i != a.remote.index {
			sd.MediaDescriptions = append(sd.MediaDescriptions, &pionsdp.MediaDescription{MediaName: pionsdp.MediaName{
				Media:   m.Type,
				Protos:  strings.Split(m.Proto, "/"),
				Formats: slices.Clone(m.Formats),
			}})
			continue
		}
		codecs := []sdp.Codec{{PT: a.pt, Name: a.codec}}
		if a.dtmfPT >= 0 {
			codecs = append(codecs, sdp.Codec{PT: uint8(a.dtmfPT), Name: sdp.TelephoneEvent})
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, audioMedia(port, codecs, a.ptime, a.direction))
	}
	return marshal(sd)
}

// sdp returns the offer as SDP text for our RTP port.
func (of *offer) sdp(o origin, port int) (string, error) {
	var codecs []sdp.Codec
	for _, c := range of.codecs {
		codecs = append(codecs, sdp.Codec{PT: staticPayloadType(c), Name: c})
	}
	codecs = append(codecs, sdp.Codec{PT: offerDTMFPayloadType, Name: sdp.TelephoneEvent})
	sd := o.description()
	sd.MediaDescriptions = []*pionsdp.MediaDescription{audioMedia(port, codecs, of.ptime, of.direction)}
	return marshal(sd)
}

// negotiated returns what the offer settles until the answer arrives: its
// first codec, and telephone-event as 101.
func (of *offer) negotiated() negotiated {
	return negotiated{codec: of.codecs[0], pt: staticPayloadType(of.codecs[0]),
		dtmfPT: offerDTMFPayloadType, direction: of.direction}
}

// staticPayloadType returns the static payload type of a codec media
// offers (PCMU or PCMA, at 8000 Hz).
func staticPayloadType(codec string) uint8 {
	pt, _ := sdp.StaticPayloadType(codec, 8000)
	return pt
}

func marshal(sd *pionsdp.SessionDescription) (string, error) {
	b, err := sd.Marshal()
	if err != nil {
		return "", errorf(events.MediaErrInternal, "marshal SDP: %v", err)
	}
	return string(b), nil
}

// update is what a renegotiated SDP pair settles: where the far end
// receives, and what we send.
type update struct {
	negotiated
	remote audioLine
}

// negotiateUpdate reads a completed offer/answer pair (UpdateMediaStream):
// the far end's address and port from remote, our direction from local,
// and the codec: the first of remote's PCMU/PCMA formats that local lists
// too (in an answer to our offer that is the answerer's choice), with the
// far end's payload type. telephone-event is kept when both list it. Its
// errors are incompatible_sdp *mediaErrors.
func negotiateUpdate(local, remote string) (*update, error) {
	ld, err := sdp.Parse(local)
	if err != nil {
		return nil, errorf(events.MediaErrIncompatibleSDP, "local SDP: %v", err)
	}
	la, err := readAudio(ld, false)
	if err != nil {
		return nil, errorf(events.MediaErrIncompatibleSDP, "local SDP: %v", err)
	}
	rd, err := sdp.Parse(remote)
	if err != nil {
		return nil, errorf(events.MediaErrIncompatibleSDP, "remote SDP: %v", err)
	}
	ra, err := readAudio(rd, true)
	if err != nil {
		return nil, errorf(events.MediaErrIncompatibleSDP, "remote SDP: %v", err)
	}
	ours := func(name string) bool {
		return slices.ContainsFunc(la.formats, func(f sdp.Codec) bool { return f.Name == name })
	}
	u := &update{remote: ra, negotiated: negotiated{dtmfPT: -1, direction: la.direction}}
	for _, f := range ra.formats {
		if u.codec == "" && f.Name != sdp.TelephoneEvent && ours(f.Name) {
			u.codec, u.pt = f.Name, f.PT
		}
		if u.dtmfPT < 0 && f.Name == sdp.TelephoneEvent && ours(f.Name) {
			u.dtmfPT = int(f.PT)
		}
	}
	if u.codec == "" {
		return nil, errorf(events.MediaErrIncompatibleSDP, "no common codec: the remote SDP has %s, the local SDP %s",
			formatNames(ra.formats), formatNames(la.formats))
	}
	return u, nil
}
