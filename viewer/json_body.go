package viewer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// decodeJSONBody decodes a request's JSON body into v, strictly (an
// unknown field is an error). It returns the status code to answer with
// when it fails. The body must be declared as application/json even when
// empty: a browser sends that type across origins only after a CORS
// preflight, which this server never grants, so a page on another site
// cannot post to the API in an operator's browser.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, maxBytes int64, allowEmpty bool, v any) (int, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, errors.New("content type must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF) && allowEmpty:
			return 0, nil
		case errors.Is(err, io.EOF):
			return http.StatusBadRequest, errors.New("body: empty, want a JSON object")
		case errors.As(err, &tooBig):
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body: larger than %d bytes", maxBytes)
		}
		return http.StatusBadRequest, fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("body: more than one JSON value")
	}
	return 0, nil
}
