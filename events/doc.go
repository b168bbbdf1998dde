// Package events turns the cache writer's publishes into a stream of task
// changes and fans it out to subscribers: the API's Server-Sent Events
// stream (GET /api2/json/remotes/tasks/events), the task-log keeper, and
// later notifiers (issue 11: webhook and e-mail alerts on failed tasks
// subscribe with an errors-only Match and resume with After when dropped).
//
// Shape: the cache writer is the only owner of the cache. After each batch
// it applies it hands the Hub a Published (the snapshots before and after
// the batch and the batch's tasks) with Publish, which never blocks: the
// Hub's inbox is bounded and a publish that finds it full is counted and
// turned into a Reload event. The Hub's own goroutine (the only owner of
// the ring and the subscriber set) compares the two immutable snapshots
// for the batch's tasks, numbers the changes, keeps the last Options.Ring
// of them and offers each to every subscriber whose Match accepts it.
//
// Each subscriber has a bounded buffer (a channel). A send that finds it
// full drops the subscriber: its channel is closed and Err reports
// ErrTooSlow. Nothing the Hub does waits for a subscriber, so a stalled
// client never slows the writer or the other subscribers.
//
// Resuming: events carry increasing IDs. A subscriber that passes the ID
// of the last event it saw (SSE's Last-Event-ID) gets every event after it
// from the ring; when that event has left the ring (or comes from another
// run of the process), it gets one Reload event instead and must reload
// its view (the task list) before applying later events. IDs start at the
// Hub's start time in microseconds, so IDs of an earlier run are older
// than any ID of the ring.
//
// Stop path: Close stops the goroutine and waits for it; every
// subscription's channel is then closed with ErrClosed.
package events
