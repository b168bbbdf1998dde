package actors

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"
)

// LoggerFactory routes protoactor's slog output into zerolog at level
// (warnings and errors by default: protoactor logs routine lines such as
// "[ACTOR] Recovering" and dead letters at Info). Pass it to
// actor.WithLoggerFactory when building an actor system.
func LoggerFactory(log zerolog.Logger, level slog.Level) func(*actor.ActorSystem) *slog.Logger {
	return func(*actor.ActorSystem) *slog.Logger {
		return slog.New(&slogHandler{log: log.With().Str("component", "protoactor").Logger(), level: level})
	}
}

// slogHandler is a slog.Handler writing to a zerolog.Logger.
type slogHandler struct {
	log    zerolog.Logger
	level  slog.Level
	prefix string // group prefix for keys, "g." style
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.log.WithLevel(zerologLevel(r.Level))
	r.Attrs(func(a slog.Attr) bool {
		addAttr(ev, h.prefix, a)
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := h.log.With()
	for _, a := range attrs {
		c = c.Str(fieldName(h.prefix, a.Key), attrString(a.Value))
	}
	return &slogHandler{log: c.Logger(), level: h.level, prefix: h.prefix}
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &slogHandler{log: h.log, level: h.level, prefix: h.prefix + name + "."}
}

func addAttr(ev *zerolog.Event, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			addAttr(ev, prefix+a.Key+".", g)
		}
		return
	}
	ev.Str(fieldName(prefix, a.Key), attrString(v))
}

// fieldName renames protoactor's "message" attribute, which would collide
// with zerolog's message field, and applies the group prefix.
func fieldName(prefix, key string) string {
	if prefix == "" && (key == zerolog.MessageFieldName || key == "message") {
		return "actor_message"
	}
	return prefix + key
}

// attrString renders a value; PIDs print as their id, not as a struct.
func attrString(v slog.Value) string {
	v = v.Resolve()
	if v.Kind() == slog.KindAny {
		switch x := v.Any().(type) {
		case *actor.PID:
			if x == nil {
				return "<nil>"
			}
			return x.Id
		case error:
			return x.Error()
		case fmt.Stringer:
			return x.String()
		}
	}
	return v.String()
}

func zerologLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	case l >= slog.LevelInfo:
		return zerolog.InfoLevel
	}
	return zerolog.DebugLevel
}
