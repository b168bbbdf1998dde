package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/notify/tmpl"
)

// webhook delivers a message as an HTTP request whose body is the
// target's template.
type webhook struct {
	cfg    *config.Notify
	client *http.Client
	tr     *http.Transport
}

func newWebhook(n *config.Notify, dial DialFunc) *webhook {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: n.Timeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       time.Minute,
	}
	return &webhook{cfg: n, tr: tr, client: &http.Client{
		Transport: tr,
		// A redirect is a failure: following it would send the message
		// (and the headers) somewhere the configuration does not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Close implements Sender.
func (w *webhook) Close() { w.tr.CloseIdleConnections() }

// Send implements Sender. Its errors never contain the URL.
func (w *webhook) Send(ctx context.Context, m tmpl.Message) error {
	body, err := tmpl.Render(w.cfg.Body, m)
	if err != nil {
		return fmt.Errorf("render body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, w.cfg.Method, w.cfg.URL.Reveal(), strings.NewReader(body))
	if err != nil {
		return errors.New("build request: the URL is not usable")
	}
	ct := "text/plain; charset=utf-8"
	if b := strings.TrimSpace(body); strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[") {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "taskfleet")
	for _, h := range w.cfg.Headers {
		req.Header.Set(h.Name, h.Value.Reveal())
	}
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text quotes the URL
			err = ue.Err
		}
		return fmt.Errorf("deliver webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("deliver webhook: the receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}
