package viewer

import (
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// configureSendInterceptors sets up what a send-only session needs: NACK
// (our responder, which keeps no copies; see nackResponder) and RTCP sender
// reports, which the browser needs to sync audio and video. pion's
// ConfigureNack and ConfigureRTCPReports would add a NACK generator and a
// receiver-report loop too, which only a receiving peer uses.
func configureSendInterceptors(me *webrtc.MediaEngine, ir *interceptor.Registry) error {
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	ir.Add(nackResponderFactory{})
	sender, err := report.NewSenderInterceptor()
	if err != nil {
		return err
	}
	ir.Add(sender)
	return nil
}
