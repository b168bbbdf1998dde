package notify

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/internal/memnet"
	"github.com/taskfleet/taskfleet/notify/tmpl"
)

// fakeSMTP is the least SMTP server go-mail talks to: it keeps the DATA
// of each message.
type fakeSMTP struct {
	mu    sync.Mutex
	mails []string
	rcpts []string
}

func (s *fakeSMTP) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *fakeSMTP) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	say("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-fake")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			s.mu.Lock()
			s.rcpts = append(s.rcpts, strings.TrimSpace(line[len("RCPT TO:"):]))
			s.mu.Unlock()
			say("250 OK")
		case cmd == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.mails = append(s.mails, b.String())
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("250 OK")
		}
	}
}

// TestEmailDelivery: an e-mail target sends the rendered subject and body
// to every recipient.
func TestEmailDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var nw memnet.Network
		defer nw.Close()
		ln, err := nw.Listen("mail.test:25")
		if err != nil {
			t.Fatal(err)
		}
		srv := &fakeSMTP{}
		go srv.serve(ln)
		subject, _ := tmpl.Parse("subject", "{{.Title}}")
		body, _ := tmpl.Parse("body", "{{.Text}}")
		n := &config.Notify{Name: "mail", Kind: config.NotifyEmail, SMTPHost: "mail.test", SMTPPort: 25, SMTPTLS: "none",
			From: "taskfleet@example.com", To: []string{"ops@example.com", "oncall@example.com"}, Subject: subject, Body: body, Timeout: 30 * time.Second}
		err = SendTest(context.Background(), n, func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nw.DialContext(ctx, network, addr)
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.mails) != 1 || len(srv.rcpts) != 2 {
			t.Fatalf("%d mails to %q", len(srv.mails), srv.rcpts)
		}
		m := srv.mails[0]
		for _, want := range []string{"Subject: [test] taskfleet: 1 failed task (pve-east);", "pve-east pve1 vzdump 100: job errors"} {
			if !strings.Contains(m, want) {
				t.Errorf("mail lacks %q:\n%s", want, m)
			}
		}
		ln.Close()
	})
}
