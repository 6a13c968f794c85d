package ingest

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Reason says why a camera's last session failed, as a stable code that
// a console can say in its operator's language. The detail (addresses,
// RTSP status lines) stays in LastError and the server's log.
type Reason string

// Reasons of a failed session.
const (
	// ReasonUnreachable: the camera's address cannot be reached (connection
	// refused, no route, unknown host name).
	ReasonUnreachable Reason = "unreachable"
	// ReasonTimeout: the camera did not answer, or sent no video, in time.
	ReasonTimeout Reason = "timeout"
	// ReasonAuth: the camera refused the configured user name or password.
	ReasonAuth Reason = "auth"
	// ReasonNotFound: the camera has no stream at the configured path.
	ReasonNotFound Reason = "not_found"
	// ReasonUnsupported: the stream has no track Skywatch can relay.
	ReasonUnsupported Reason = "unsupported"
	// ReasonOther: anything else (a protocol error, a dropped connection).
	ReasonOther Reason = "other"
)

// Reasons lists every Reason, for consoles and their tests.
func Reasons() []Reason {
	return []Reason{ReasonUnreachable, ReasonTimeout, ReasonAuth, ReasonNotFound, ReasonUnsupported, ReasonOther}
}

// Text says the reason in plain English, without any detail of the
// camera: what an API may show where a console has no words of its own.
func (r Reason) Text() string {
	switch r {
	case ReasonUnreachable:
		return "the camera cannot be reached"
	case ReasonTimeout:
		return "the camera did not answer in time"
	case ReasonAuth:
		return "the camera refused the configured user name or password"
	case ReasonNotFound:
		return "the camera has no such stream"
	case ReasonUnsupported:
		return "the camera's stream has no video or audio the server can relay"
	case ReasonOther:
		return "the camera's stream failed"
	}
	return ""
}

// classify finds the Reason of a session's error.
func classify(err error) Reason {
	var (
		bad   liberrors.ErrClientBadStatusCode
		setup liberrors.ErrClientAuthSetup
		dns   *net.DNSError
		nerr  net.Error
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errNoTracks):
		return ReasonUnsupported
	case errors.As(err, &bad):
		switch bad.Code {
		case base.StatusUnauthorized, base.StatusForbidden:
			return ReasonAuth
		case base.StatusNotFound:
			return ReasonNotFound
		case base.StatusUnsupportedMediaType:
			return ReasonUnsupported
		}
		return ReasonOther
	case errors.As(err, &setup):
		return ReasonAuth
	case errors.Is(err, errReadTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, new(liberrors.ErrClientTCPTimeout)), errors.As(err, new(liberrors.ErrClientUDPTimeout)),
		errors.As(err, new(liberrors.ErrClientRequestTimedOut)):
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &dns):
		return ReasonUnreachable
	case errors.As(err, &nerr) && nerr.Timeout():
		return ReasonTimeout
	}
	return ReasonOther
}
