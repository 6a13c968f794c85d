package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// cdpPage drives one Chromium tab over the DevTools protocol. It is test
// code: just enough of the protocol to load a page, evaluate expressions,
// take a screenshot and hear the page's events. One goroutine reads the
// connection: it hands replies to their callers and events to onEvent.
type cdpPage struct {
	ws      *websocket.Conn
	onEvent func(method string, params json.RawMessage)

	sendMu sync.Mutex // one frame at a time on the connection

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpReply
	readErr error

	done chan struct{} // closed when the reader has stopped
}

type cdpReply struct {
	Result json.RawMessage
	Err    error
}

// devToolsPort waits for Chromium to write the port it listens on.
func devToolsPort(ctx context.Context, userDataDir string) (string, error) {
	path := filepath.Join(userDataDir, "DevToolsActivePort")
	for {
		if f, err := os.Open(path); err == nil {
			sc := bufio.NewScanner(f)
			ok := sc.Scan()
			f.Close()
			if ok && sc.Text() != "" {
				return sc.Text(), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("chromium wrote no DevToolsActivePort: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openPage opens a new blank tab and connects to it. onEvent (may be nil)
// gets every event the tab sends, on the reading goroutine: it must not
// block or call the page. Enable the domains you want to hear, then
// navigate.
func openPage(ctx context.Context, port string, onEvent func(method string, params json.RawMessage)) (*cdpPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://127.0.0.1:"+port+"/json/new?about:blank", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("devtools new tab: %w", err)
	}
	defer resp.Body.Close()
	var target struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&target); err != nil {
		return nil, fmt.Errorf("devtools new tab: %w", err)
	}
	ws, err := websocket.Dial(target.WebSocketDebuggerURL, "", "http://127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("devtools connect: %w", err)
	}
	// Screenshots are megabytes of base64 in one frame.
	ws.MaxPayloadBytes = 64 << 20
	if onEvent == nil {
		onEvent = func(string, json.RawMessage) {}
	}
	p := &cdpPage{ws: ws, onEvent: onEvent, pending: map[int]chan cdpReply{}, done: make(chan struct{})}
	go p.read()
	return p, nil
}

// read hands each message to its caller or to onEvent until the
// connection ends; then every waiting call fails.
func (p *cdpPage) read() {
	defer close(p.done)
	for {
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := websocket.JSON.Receive(p.ws, &msg); err != nil {
			p.mu.Lock()
			p.readErr = err
			for id, ch := range p.pending {
				ch <- cdpReply{Err: fmt.Errorf("devtools connection: %w", err)}
				delete(p.pending, id)
			}
			p.mu.Unlock()
			return
		}
		if msg.ID == 0 {
			p.onEvent(msg.Method, msg.Params)
			continue
		}
		p.mu.Lock()
		ch := p.pending[msg.ID]
		delete(p.pending, msg.ID)
		p.mu.Unlock()
		if ch == nil {
			continue // its caller gave up
		}
		r := cdpReply{Result: msg.Result}
		if msg.Error != nil {
			r.Err = errors.New(msg.Error.Message)
		}
		ch <- r
	}
}

// close ends the connection and waits for the reader.
func (p *cdpPage) close() {
	p.ws.Close()
	<-p.done
}

// call sends one command and waits for its reply.
func (p *cdpPage) call(ctx context.Context, method string, params any, result any) error {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan cdpReply, 1)
	p.mu.Lock()
	if p.readErr != nil {
		err := p.readErr
		p.mu.Unlock()
		return fmt.Errorf("%s: devtools connection: %w", method, err)
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.mu.Unlock()
	p.sendMu.Lock()
	err := websocket.JSON.Send(p.ws, map[string]any{"id": id, "method": method, "params": params})
	p.sendMu.Unlock()
	if err != nil {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return fmt.Errorf("%s: %w", method, r.Err)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(r.Result, result)
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its JSON value into out (nil: ignore it).
func (p *cdpPage) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if err != nil {
		return err
	}
	if d := res.ExceptionDetails; d != nil {
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		return fmt.Errorf("evaluate %q: %s", shorten(strings.TrimSpace(expr), 200), text)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// navigate loads url in the tab.
func (p *cdpPage) navigate(ctx context.Context, url string) error {
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigate %s: %s", url, res.ErrorText)
	}
	return nil
}

// screenshot saves a PNG of the page.
func (p *cdpPage) screenshot(ctx context.Context, path string) error {
	var res struct {
		Data []byte `json:"data"`
	}
	if err := p.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		return err
	}
	return os.WriteFile(path, res.Data, 0o644)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
