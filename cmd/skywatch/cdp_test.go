package main

import (
	"bufio"
	"context"
	"encoding/json"
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
// code: just enough of the protocol to load a page, evaluate expressions
// and take a screenshot.
type cdpPage struct {
	logf   func(format string, args ...any)
	url    string
	ws     *websocket.Conn
	mu     sync.Mutex
	nextID int
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

// openPage opens a new tab on url and connects to it.
func openPage(ctx context.Context, port, url string) (*cdpPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://127.0.0.1:"+port+"/json/new?"+url, nil)
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
	p := &cdpPage{url: target.WebSocketDebuggerURL}
	if err := p.dial(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *cdpPage) dial() error {
	ws, err := websocket.Dial(p.url, "", "http://127.0.0.1")
	if err != nil {
		return fmt.Errorf("devtools connect: %w", err)
	}
	p.ws = ws
	return nil
}

// callRetry is call with a short deadline per try: a command sent while
// the page is still navigating can go unanswered, so it is sent again on a
// fresh connection.
func (p *cdpPage) callRetry(ctx context.Context, method string, params any, result any) error {
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := p.call(tctx, method, params, result)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if p.logf != nil {
			p.logf("devtools %s: %v; reconnecting", method, err)
		}
		p.ws.Close()
		if derr := p.dial(); derr != nil {
			return fmt.Errorf("%w (after %v)", derr, err)
		}
	}
}

func (p *cdpPage) close() { p.ws.Close() }

// call sends one command and waits for its reply, skipping events.
func (p *cdpPage) call(ctx context.Context, method string, params any, result any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	id := p.nextID
	if err := websocket.JSON.Send(p.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		p.ws.SetReadDeadline(dl)
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := websocket.JSON.Receive(p.ws, &msg); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			return fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, result)
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value into out.
func (p *cdpPage) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := p.callRetry(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("evaluate %q: %s", strings.TrimSpace(expr), res.ExceptionDetails.Text)
	}
	return json.Unmarshal(res.Result.Value, out)
}

// screenshot saves a PNG of the page.
func (p *cdpPage) screenshot(ctx context.Context, path string) error {
	var res struct {
		Data []byte `json:"data"`
	}
	if err := p.callRetry(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		return err
	}
	return os.WriteFile(path, res.Data, 0o644)
}
