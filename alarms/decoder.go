package alarms

// Decoder turns one device payload into events. Decoders fill the device's
// fields of Event (ID may stay empty when the payload has none: the intake
// then derives one from the content); the intake sets the server's fields.
//
// A decoder must never panic, whatever the bytes, and returns an error that
// says what is wrong with a payload it cannot decode. Decoders live in
// hardware and are given to the intake by name.
type Decoder interface {
	Decode(payload []byte) ([]Event, error)
}

// DecoderFunc lets a plain function be a Decoder.
type DecoderFunc func(payload []byte) ([]Event, error)

// Decode calls f.
func (f DecoderFunc) Decode(payload []byte) ([]Event, error) { return f(payload) }
