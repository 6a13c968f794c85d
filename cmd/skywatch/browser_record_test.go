package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sessionRecord hears a tab's events for the whole browser session: what
// the page wrote to its console, the exceptions it threw, the browser's
// own error log, every request the page made, and every response body it
// got (fetched with Network.getResponseBody as each finishes, and each
// Server-Sent Event as it arrives).
type sessionRecord struct {
	mu       sync.Mutex
	problems []string // console errors, exceptions, unexpected error log entries
	failures []string // error log entries of the failures the test caused
	console  []string // other console output (the page should have none)
	expected []expectedFailure
	requests []recordedRequest
	bodies   []recordedBody
	bodyErrs []string
	pending  map[string]recordedRequest // by request id, until its response ends

	finished    chan string  // request ids whose response ended, for the body fetcher
	outstanding atomic.Int64 // ids sent on finished and not yet fetched
	dropped     int          // finished responses the fetcher had no room for
}

type recordedRequest struct {
	id, method, url string
	status          int
}

type recordedBody struct {
	url, body string
}

// expectedFailure is a request the test makes fail on purpose: the
// browser logs "Failed to load resource" for it, which is no page error.
type expectedFailure struct {
	path   string // URL path prefix
	status int
}

func newSessionRecord() *sessionRecord {
	return &sessionRecord{pending: map[string]recordedRequest{}, finished: make(chan string, 8192)}
}

// expectFailure says that requests under path will fail with status from
// now on, on purpose.
func (r *sessionRecord) expectFailure(path string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expected = append(r.expected, expectedFailure{path, status})
}

var failedStatus = regexp.MustCompile(`status of (\d{3})`)

// onEvent is the tab's event handler; it runs on the DevTools reader and
// does not block.
func (r *sessionRecord) onEvent(method string, params json.RawMessage) {
	switch method {
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, fmt.Sprint(a.Value))
			}
		}
		line := "console." + ev.Type + ": " + strings.Join(parts, " ")
		r.mu.Lock()
		if ev.Type == "error" || ev.Type == "assert" {
			r.problems = append(r.problems, line)
		} else {
			r.console = append(r.console, line)
		}
		r.mu.Unlock()
	case "Runtime.exceptionThrown":
		var ev struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				URL       string `json:"url"`
				Line      int    `json:"lineNumber"`
				Exception *struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		d := ev.ExceptionDetails
		line := fmt.Sprintf("exception at %s:%d: %s", d.URL, d.Line+1, d.Text)
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
		r.mu.Lock()
		r.problems = append(r.problems, line)
		r.mu.Unlock()
	case "Log.entryAdded":
		var ev struct {
			Entry struct {
				Source string `json:"source"`
				Level  string `json:"level"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &ev) != nil || ev.Entry.Level != "error" {
			return
		}
		e := ev.Entry
		r.mu.Lock()
		line := fmt.Sprintf("log %s error: %s (%s)", e.Source, e.Text, e.URL)
		if e.Source == "network" && r.isExpected(e.URL, e.Text) {
			r.failures = append(r.failures, line)
		} else {
			r.problems = append(r.problems, line)
		}
		r.mu.Unlock()
	case "Network.requestWillBeSent":
		var ev struct {
			RequestID string `json:"requestId"`
			Request   struct {
				URL    string `json:"url"`
				Method string `json:"method"`
			} `json:"request"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		req := recordedRequest{id: ev.RequestID, method: ev.Request.Method, url: ev.Request.URL}
		r.mu.Lock()
		r.requests = append(r.requests, req)
		r.pending[ev.RequestID] = req
		r.mu.Unlock()
	case "Network.responseReceived":
		var ev struct {
			RequestID string `json:"requestId"`
			Response  struct {
				Status int `json:"status"`
			} `json:"response"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		r.mu.Lock()
		if req, ok := r.pending[ev.RequestID]; ok {
			req.status = ev.Response.Status
			r.pending[ev.RequestID] = req
		}
		r.mu.Unlock()
	case "Network.loadingFinished":
		var ev struct {
			RequestID string `json:"requestId"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		r.outstanding.Add(1)
		select {
		case r.finished <- ev.RequestID:
		default:
			r.outstanding.Add(-1)
			r.mu.Lock()
			r.dropped++
			r.mu.Unlock()
		}
	case "Network.eventSourceMessageReceived":
		var ev struct {
			RequestID string `json:"requestId"`
			EventName string `json:"eventName"`
			Data      string `json:"data"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return
		}
		r.mu.Lock()
		u := r.pending[ev.RequestID].url
		r.bodies = append(r.bodies, recordedBody{url: u + " (event " + ev.EventName + ")", body: ev.Data})
		r.mu.Unlock()
	}
}

// isExpected tells whether a failed load of rawURL, logged as text, is
// one the test caused. r.mu is held.
func (r *sessionRecord) isExpected(rawURL, text string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	m := failedStatus.FindStringSubmatch(text)
	if m == nil {
		return false
	}
	for _, e := range r.expected {
		if strings.HasPrefix(u.Path, e.path) && m[1] == fmt.Sprint(e.status) {
			return true
		}
	}
	return false
}

// fetchBodies asks for each finished response's body until ctx ends or
// finished is closed. It is the only caller on page besides the test.
func (r *sessionRecord) fetchBodies(ctx context.Context, page *cdpPage) {
	for {
		var id string
		select {
		case <-ctx.Done():
			return
		case v, ok := <-r.finished:
			if !ok {
				return
			}
			id = v
		}
		var res struct {
			Body          string `json:"body"`
			Base64Encoded bool   `json:"base64Encoded"`
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := page.call(cctx, "Network.getResponseBody", map[string]any{"requestId": id}, &res)
		cancel()
		r.mu.Lock()
		req := r.pending[id]
		delete(r.pending, id)
		if err != nil {
			r.bodyErrs = append(r.bodyErrs, fmt.Sprintf("%s %s (%d): %v", req.method, req.url, req.status, err))
		} else {
			// Base64 bodies are images and fonts: nothing of ours to read.
			if !res.Base64Encoded {
				r.bodies = append(r.bodies, recordedBody{url: req.method + " " + req.url, body: res.Body})
			}
		}
		r.mu.Unlock()
		r.outstanding.Add(-1)
	}
}

// fetchUnfinished asks for the bodies of the responses that never
// finished loading (ones the page did not read to the end, the event
// stream): whatever the browser holds of them.
func (r *sessionRecord) fetchUnfinished(ctx context.Context, page *cdpPage) {
	r.mu.Lock()
	var reqs []recordedRequest
	for _, req := range r.pending {
		if req.status > 0 {
			reqs = append(reqs, req)
		}
	}
	r.mu.Unlock()
	for _, req := range reqs {
		var res struct {
			Body          string `json:"body"`
			Base64Encoded bool   `json:"base64Encoded"`
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := page.call(cctx, "Network.getResponseBody", map[string]any{"requestId": req.id}, &res)
		cancel()
		r.mu.Lock()
		if err != nil {
			r.bodyErrs = append(r.bodyErrs, fmt.Sprintf("%s %s (%d, not read by the page): %v", req.method, req.url, req.status, err))
		} else if !res.Base64Encoded {
			r.bodies = append(r.bodies, recordedBody{url: req.method + " " + req.url, body: res.Body})
		}
		r.mu.Unlock()
	}
}

// drained tells whether every finished response has been fetched.
func (r *sessionRecord) drained() bool { return r.outstanding.Load() == 0 }

// sessionSnapshot is a copy of what a sessionRecord holds.
type sessionSnapshot struct {
	problems, console, failures []string
	requests                    []recordedRequest
	bodies                      []recordedBody
	bodyErrs                    []string
	unfinished                  []recordedRequest // no response end seen
	dropped                     int
}

// snapshot copies what the record holds now.
func (r *sessionRecord) snapshot() sessionSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := sessionSnapshot{
		problems: slices.Clone(r.problems), console: slices.Clone(r.console), failures: slices.Clone(r.failures),
		requests: slices.Clone(r.requests), bodies: slices.Clone(r.bodies), bodyErrs: slices.Clone(r.bodyErrs),
		dropped: r.dropped,
	}
	for _, req := range r.pending {
		s.unfinished = append(s.unfinished, req)
	}
	return s
}
