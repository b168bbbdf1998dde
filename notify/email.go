package notify

import (
	"context"
	"fmt"

	"github.com/wneessen/go-mail"

	"github.com/taskfleet/taskfleet/config"
	"github.com/taskfleet/taskfleet/notify/tmpl"
)

// email delivers a message over SMTP (github.com/wneessen/go-mail).
type email struct {
	cfg  *config.Notify
	dial DialFunc
}

// Close implements Sender: every Send uses its own connection.
func (e *email) Close() {}

// Send implements Sender.
func (e *email) Send(ctx context.Context, m tmpl.Message) error {
	subject, err := tmpl.Render(e.cfg.Subject, m)
	if err != nil {
		return fmt.Errorf("render subject: %w", err)
	}
	body, err := tmpl.Render(e.cfg.Body, m)
	if err != nil {
		return fmt.Errorf("render body: %w", err)
	}
	msg := mail.NewMsg()
	if err := msg.From(e.cfg.From); err != nil {
		return fmt.Errorf("e-mail from: %w", err)
	}
	if err := msg.To(e.cfg.To...); err != nil {
		return fmt.Errorf("e-mail to: %w", err)
	}
	msg.Subject(subject)
	msg.SetBodyString(mail.TypeTextPlain, body)
	opts := []mail.Option{mail.WithPort(e.cfg.SMTPPort), mail.WithTimeout(e.cfg.Timeout)}
	switch e.cfg.SMTPTLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if e.cfg.SMTPUser != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(e.cfg.SMTPUser), mail.WithPassword(e.cfg.SMTPPassword.Reveal()))
	}
	if e.dial != nil {
		opts = append(opts, mail.WithDialContextFunc(mail.DialContextFunc(e.dial)))
	}
	c, err := mail.NewClient(e.cfg.SMTPHost, opts...)
	if err != nil {
		return fmt.Errorf("e-mail client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("deliver e-mail: %w", err)
	}
	return nil
}
