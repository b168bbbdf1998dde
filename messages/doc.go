// Package messages is the protocol between taskfleet's actors. Reading it
// explains how the system works:
//
//	                 Tick (ten a tick, wall-clock aligned)
//	ticker goroutine ───────────────────────────────► supervisor
//	                                                   │  PollRemote (per remote, once a tick at its own
//	                                                   │  phase: tracked tasks every tick, a full refresh
//	                                                   │  every refresh interval at the remote's own
//	                                                   │  offset, running tasks every 30 s)
//	                                                   ▼
//	                          poller "REMOTE" (one per remote, owns its client and connection pool)
//	                             │  runs each fetch in a goroutine with a context; the result comes
//	                             │  back to itself as FetchFinished, so the mailbox never waits on
//	                             │  the network
//	                             │  ApplyBatch ───────────────────► cache writer (the only owner of the
//	                             │  ◄──────────────── BatchApplied   archive; publishes a snapshot
//	                             │                                   after every batch)
//	                             └─ health is published lock-free for the status API
//
// The supervisor also sends the writer CheckRotation (at start and hourly)
// and ApplyJournal (hourly), spawns and stops pollers on Reconfigure, and
// restarts pollers and the writer when they panic.
//
// Readers (the HTTP API) never send messages to query tasks: they read the
// cache's latest immutable snapshot. Commands that change state are
// requests answered by a paired result message: TrackTask goes to the cache
// writer (the poller picks tracked tasks up from the next snapshot, so a
// hanging remote cannot delay the answer), RefreshRemote to a poller.
//
// Messages are plain data: no channels, no PIDs except where a reply must
// go somewhere other than the sender.
package messages
