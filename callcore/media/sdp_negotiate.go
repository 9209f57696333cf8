package media

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/callbus/callbus/callcore/events"
)

// offerDTMFPayloadType is the payload type of telephone-event in our offers.
const offerDTMFPayloadType = 101

// defaultPtimeMS is the packetization time when MediaConfig gives none.
const defaultPtimeMS = 20

// dtmfEvents is the fmtp of telephone-event: the DTMF digits 0-9, *, #,
// A-D and flash (RFC 4733 §3.2).
const dtmfEvents = "0-16"

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
	codec     string // codecPCMU or codecPCMA
	pt        uint8
	dtmfPT    int    // telephone-event's payload type, or -1
	direction string // ours
}

// answer is an answer planned for a remote offer: what was negotiated,
// where the far end receives, and the offer itself, whose m= lines the
// answer mirrors.
type answer struct {
	negotiated
	remote audioLine
	offer  *sdp.SessionDescription
	ptime  int
}

// offer is an offer planned from a MediaConfig.
type offer struct {
	codecs    []string // in preference order
	direction string
	ptime     int
}

// allowedCodecs returns the codecs of cfg that media supports, in cfg's
// order; an empty list allows PCMU and PCMA. Names are matched without
// regard to case; telephone-event is always negotiated and may be listed.
// It returns an incompatible_sdp error when cfg lists codecs but none of
// them is supported.
func allowedCodecs(cfg events.MediaConfig) ([]string, error) {
	if len(cfg.Codecs) == 0 {
		return []string{codecPCMU, codecPCMA}, nil
	}
	var out []string
	for _, c := range cfg.Codecs {
		for _, known := range []string{codecPCMU, codecPCMA} {
			if strings.EqualFold(c, known) && !slices.Contains(out, known) {
				out = append(out, known)
			}
		}
	}
	if len(out) == 0 {
		return nil, errorf(ErrorCodeIncompatibleSDP, "media_config lists no supported codec (%s; supported: PCMU, PCMA)",
			strings.Join(cfg.Codecs, ", "))
	}
	return out, nil
}

// configDirection returns cfg's direction, "" meaning sendrecv, or an
// invalid_config error.
func configDirection(cfg events.MediaConfig) (string, error) {
	switch cfg.Direction {
	case "":
		return events.MediaSendRecv, nil
	case events.MediaSendRecv, events.MediaSendOnly, events.MediaRecvOnly, events.MediaInactive:
		return cfg.Direction, nil
	}
	return "", errorf(ErrorCodeInvalidConfig, "media_config direction %q is not sendrecv, sendonly, recvonly or inactive",
		cfg.Direction)
}

// configPtime returns cfg's packetization time, 0 meaning the default, or
// an invalid_config error.
func configPtime(cfg events.MediaConfig) (int, error) {
	switch {
	case cfg.PtimeMS == 0:
		return defaultPtimeMS, nil
	case cfg.PtimeMS < 10 || cfg.PtimeMS > 200 || cfg.PtimeMS%10 != 0:
		return 0, errorf(ErrorCodeInvalidConfig, "media_config ptime_ms %d is not a multiple of 10 in 10-200", cfg.PtimeMS)
	}
	return cfg.PtimeMS, nil
}

// answerDirection is the direction of an answer to an offer that says
// offered, when we would like ours (RFC 3264 §6.1): we send only if the
// far end receives, and receive only if it sends.
func answerDirection(offered, ours string) string {
	send := sends(ours) && receives(offered)
	recv := receives(ours) && sends(offered)
	switch {
	case send && recv:
		return events.MediaSendRecv
	case send:
		return events.MediaSendOnly
	case recv:
		return events.MediaRecvOnly
	}
	return events.MediaInactive
}

func sends(dir string) bool    { return dir == events.MediaSendRecv || dir == events.MediaSendOnly }
func receives(dir string) bool { return dir == events.MediaSendRecv || dir == events.MediaRecvOnly }

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
	sd, err := parseSDP(raw)
	if err != nil {
		return nil, errorf(ErrorCodeIncompatibleSDP, "remote offer: %v", err)
	}
	remote, err := readAudio(sd, true)
	if err != nil {
		return nil, errorf(ErrorCodeIncompatibleSDP, "remote offer: %v", err)
	}
	a := &answer{remote: remote, offer: sd, ptime: ptime,
		negotiated: negotiated{dtmfPT: -1, direction: answerDirection(remote.direction, dir)}}
	for _, f := range remote.formats {
		if a.codec == "" && slices.Contains(allowed, f.name) {
			a.codec, a.pt = f.name, f.pt
		}
		if a.dtmfPT < 0 && f.name == codecTelephoneEvent {
			a.dtmfPT = int(f.pt)
		}
	}
	if a.codec == "" {
		return nil, errorf(ErrorCodeIncompatibleSDP, "no common codec: the offer has %s, media_config allows %s",
			formatNames(remote.formats), strings.Join(allowed, ", "))
	}
	return a, nil
}

func formatNames(fs []format) string {
	var names []string
	for _, f := range fs {
		if f.name != codecTelephoneEvent {
			names = append(names, f.name)
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
func (o origin) description() *sdp.SessionDescription {
	ip := o.ip.Unmap().WithZone("")
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	return &sdp.SessionDescription{
		Origin: sdp.Origin{Username: "callbus", SessionID: o.id, SessionVersion: o.version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip.String()},
		SessionName: "callbus",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType,
			Address: &sdp.Address{Address: ip.String()}},
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
}

// audioMedia returns our audio m= section on port.
func audioMedia(port int, codecs []format, ptime int, direction string) *sdp.MediaDescription {
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: port},
		Protos: []string{"RTP", "AVP"}}}
	for _, c := range codecs {
		fmtp := ""
		if c.name == codecTelephoneEvent {
			fmtp = dtmfEvents
		}
		md.WithCodec(c.pt, c.name, 8000, 0, fmtp)
	}
	md.WithValueAttribute("ptime", strconv.Itoa(ptime))
	md.WithPropertyAttribute(direction)
	return md
}

// sdp returns the answer as SDP text for our RTP port: one m= line per
// offered one, in order (RFC 3264 §6), the audio stream accepted and every
// other stream rejected with port 0.
func (a *answer) sdp(o origin, port int) (string, error) {
	sd := o.description()
	for i, md := range a.offer.MediaDescriptions {
		if i != a.remote.index {
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{MediaName: sdp.MediaName{
				Media:   md.MediaName.Media,
				Protos:  slices.Clone(md.MediaName.Protos),
				Formats: slices.Clone(md.MediaName.Formats),
			}})
			continue
		}
		codecs := []format{{pt: a.pt, name: a.codec}}
		if a.dtmfPT >= 0 {
			codecs = append(codecs, format{pt: uint8(a.dtmfPT), name: codecTelephoneEvent})
		}
		sd.MediaDescriptions = append(sd.MediaDescriptions, audioMedia(port, codecs, a.ptime, a.direction))
	}
	return marshal(sd)
}

// sdp returns the offer as SDP text for our RTP port.
func (of *offer) sdp(o origin, port int) (string, error) {
	var codecs []format
	for _, c := range of.codecs {
		codecs = append(codecs, format{pt: staticPayloadTypes[c], name: c})
	}
	codecs = append(codecs, format{pt: offerDTMFPayloadType, name: codecTelephoneEvent})
	sd := o.description()
	sd.MediaDescriptions = []*sdp.MediaDescription{audioMedia(port, codecs, of.ptime, of.direction)}
	return marshal(sd)
}

// negotiated returns what the offer settles until the answer arrives: its
// first codec, and telephone-event as 101.
func (of *offer) negotiated() negotiated {
	return negotiated{codec: of.codecs[0], pt: staticPayloadTypes[of.codecs[0]],
		dtmfPT: offerDTMFPayloadType, direction: of.direction}
}

func marshal(sd *sdp.SessionDescription) (string, error) {
	b, err := sd.Marshal()
	if err != nil {
		return "", errorf(ErrorCodeInternal, "marshal SDP: %v", err)
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
	lsd, err := parseSDP(local)
	if err != nil {
		return nil, errorf(ErrorCodeIncompatibleSDP, "local SDP: %v", err)
	}
	la, err := readAudio(lsd, false)
	if err != nil {
		return nil, errorf(ErrorCodeIncompatibleSDP, "local SDP: %v", err)
	}
	rsd, err := parseSDP(remote)
	if err != nil {
		return nil, errorf(ErrorCodeIncompatibleSDP, "remote SDP: %v", err)
	}
	ra, err := readAudio(rsd, true)
	if err != nil {
		return nil, errorf(ErrorCodeIncompatibleSDP, "remote SDP: %v", err)
	}
	ours := func(name string) bool {
		return slices.ContainsFunc(la.formats, func(f format) bool { return f.name == name })
	}
	u := &update{remote: ra, negotiated: negotiated{dtmfPT: -1, direction: la.direction}}
	for _, f := range ra.formats {
		if u.codec == "" && f.name != codecTelephoneEvent && ours(f.name) {
			u.codec, u.pt = f.name, f.pt
		}
		if u.dtmfPT < 0 && f.name == codecTelephoneEvent && ours(f.name) {
			u.dtmfPT = int(f.pt)
		}
	}
	if u.codec == "" {
		return nil, errorf(ErrorCodeIncompatibleSDP, "no common codec: the remote SDP has %s, the local SDP %s",
			formatNames(ra.formats), formatNames(la.formats))
	}
	return u, nil
}
