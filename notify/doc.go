// Package notify sends alerts about finished tasks and about guests
// without a recent successful backup to the [[notify]] targets of the
// configuration: webhooks (ntfy, Gotify, Slack/Mattermost/Discord hooks,
// generic JSON, through a text/template body) and e-mail over SMTP.
//
// Shape: one notifier actor per target, children of a small supervisor
// actor that restarts a panicking notifier with backoff, forever (see
// docs/actors.md). A notifier is the only owner of its target's queue and
// delivery state. It is fed by the cache writer's publishes through the
// events hub (a subscription that selects finished tasks matching the
// target's rules), and on start and on every Reload event it reads the
// cache snapshot as well, so that tasks that finished while taskfleet was
// down, or whose events were lost, are found too.
//
// Grouping: the first task of a burst opens a window (group_window,
// default 30 s); when it closes, everything queued goes out as one
// message. A failed delivery is retried after a growing backoff (5 s ·
// 2^n, at most 10 min, 0.5–1.5× jitter) with what was queued meanwhile.
// The queue is bounded (queue, default 1000 tasks); a task that finds it
// full is dropped and counted (taskfleet_notify_dropped_total) and the
// next message says how many were dropped. A dropped task is not recorded
// as delivered, so a later rescan (restart, reload) may queue it again.
//
// At most once per task and target, across restarts: the delivery state
// (<cache_dir>/notify/<target>.json) lists the tasks delivered, and is
// written with the cache's crash-safe file protocol (cache.WriteFileAtomic)
// after each successful delivery. A crash (or a stop) after the receiver
// took a message but before the state was written sends that message's
// tasks once more after the restart: at most one duplicate per such crash.
// Tasks that finished before the target was first configured (the
// state's "since") are never notified; entries are forgotten one day
// after they leave the cache's retention.
//
// Secrets: a webhook's URL and header values may come from files; they
// are never logged, and delivery errors never quote the URL.
//
// Stop path: Stop stops every notifier (each closes its subscription and
// waits for its reader goroutine, cancels a delivery in flight and waits
// for it, and stops its timers), then the supervisor, and shuts down the
// actor system it created.
package notify
