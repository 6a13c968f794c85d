package recorder

import (
	"context"
	"io"
	"time"
)

// Export is a planned export of a span of one camera's recordings, as one
// fragmented MP4. The same span of the same recordings always gives the
// same bytes.
type Export struct {
	Camera string
	// Start is the keyframe at or before the asked start; End the end of
	// the last sample at or before the asked end.
	Start, End time.Time
	// Size is the exact length of the MP4 in bytes, when known before
	// writing; -1 otherwise.
	Size int64

	write func(ctx context.Context, w io.Writer) (int64, error)
}

// WriteTo writes the MP4 to w. It stops when ctx ends.
func (e *Export) WriteTo(ctx context.Context, w io.Writer) (int64, error) {
	return e.write(ctx, w)
}
