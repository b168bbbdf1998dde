// Package cache is taskfleet's task archive: a history of the tasks of many
// Proxmox VE and Proxmox Backup Server remotes, kept in rotating files and
// answered from memory.
//
// One [Writer] owns the directory and all mutable state; it is not safe for
// concurrent use and is meant to be driven by a single goroutine (the
// cache-writer actor). After every change it publishes an immutable
// [Snapshot] through a [Latest]; any number of readers query snapshots
// concurrently, without locks and without waiting for a write, a merge, a
// compression or a rotation. Snapshots share immutable segments (sorted
// runs of compact task records with small indexes), so publishing one per
// batch does not copy the archive; the running tasks are kept in a few
// such segments maintained incrementally, so a publish costs what the
// batch changed, not the size of the cache.
//
// The package does no I/O outside the Writer's methods and starts no
// goroutines.
//
// # Directory
//
// The cache directory (mode 0750; files 0640) holds:
//
//	archive.<start>      archive period starting at Unix time <start>, plain
//	archive.<start>.zst  the same, zstd-compressed
//	journal              write-ahead journal of changes since the checkpoint
//	state                checkpoint: cutoffs, tracked and running tasks
//	*.tmp                a file being replaced; removed by Open
//	*.broken             copy of a damaged file, kept as evidence
//	lock                 held (flock) while a Writer has the directory open
//
// File names are the constants [ArchivePrefix], [CompressedSuffix],
// [JournalFile], [StateFile], [TmpSuffix], [BrokenSuffix] and [LockFile].
//
// Others keep files there too, which the cache leaves alone: the kept
// logs of failed tasks (tasklogs/, package tasklogs) and, when
// server.state_dir is not set, the daemon's self-signed API certificate
// (api-cert.pem, api-key.pem; a crash while one is replaced can leave a
// .api-*.pem.tmp-* file, removed at the daemon's next start).
//
// Every file except the journal is only ever replaced whole, the one way
// (writeAtomic): write name.tmp, fsync it, rename it over name, fsync the
// directory.
//
// # Task lines
//
// Journal records and the state file store a task as one line of JSON, the
// format of Proxmox Datacenter Manager's TaskCacheItem (archive files were
// written so before the binary format below, and still may be, see
// Options.LineArchives):
//
//		{"upid":"pve:east!UPID:n1:0001E240:0098A3B1:6553F100:vzdump:101:root@pam:","starttime":1700000000,"status":"OK","endtime":1700000042}
//
//	  - upid: the remote-qualified UPID, "pve:REMOTE!UPID:..." or
//	    "pbs:REMOTE!UPID:..." (the legacy "REMOTE!UPID:..." is accepted).
//	  - starttime: the UPID's start time. Redundant; readers use the UPID's.
//	  - status, endtime: present when the task has finished. status may be
//	    "" (its class is then unknown). A running task has neither (a
//	    status may appear if the remote reported one).
//
// The writer emits the keys in this order without spaces; readers accept
// any order, spaces, null values and unknown scalar keys.
//
// # Archive files
//
// Time is cut into periods of Options.Rotation seconds aligned to the Unix
// epoch (period start = t - t mod Rotation). The cache keeps exactly
// Options.Retention consecutive periods ending with the newest; each has
// one archive file, empty or not. A finished task belongs to the period
// holding its start time; the newest period also takes later start times
// until the next rotation moves them. Finished tasks that started before
// the oldest kept period are not kept. An archive file holds its period's
// finished tasks, newest first (start time descending, UPID text
// ascending, remote ascending: task.Compare), each task once. The newest
// Options.PlainFiles files are plain; older ones are one zstd frame of the
// same content, named with CompressedSuffix.
//
// The content (of a plain file, or a .zst file decompressed) is in one of
// two formats, told apart by its first bytes. The binary format, written
// by default:
//
//	file    = "taskfleet-archive 2\n" { block }
//	block   = length:uint32 little-endian | crc:uint32 little-endian | payload[length]
//	crc     = CRC-32C (Castagnoli) of payload
//	payload = ntasks:uvarint tables { task }      (ntasks tasks; the Writer puts at most 4096 in a block)
//	tables  = 6 × ( nnew:uvarint { len:uvarint bytes[len] } )
//	task    = flags:byte startdelta:varint enddelta:varint remote:uvarint status:uvarint
//	          ( if flags&2: len:uvarint upid[len]
//	            else: node:uvarint type:uvarint id:uvarint user:uvarint
//	                  pid:uvarint pstart:uvarint [taskid:uvarint if flags&1] )
//
// uvarint and varint are encoding/binary's (varint zigzag-encodes a
// signed number). tables declare the new strings of each kind, in the
// order remote ids, node names, worker types, worker ids, users, statuses:
// strings are numbered per kind in order of declaration from 0 across the
// blocks of the file, and a task refers to them by number (a block only
// uses strings declared in it or before it). flags: 1 = a PBS UPID, 2 =
// the UPID text follows because it is not canonical (its fields are then
// parsed from it); other bits are invalid. startdelta is the task's start
// time minus the previous task's in the file (0 before the first);
// enddelta is its end time minus its start time (the end time must not be
// 0). The UPID of a task without flag 2 is rebuilt from its fields (pid is
// at most 2^32-1; the taskid only for PBS) and, like the remote id, must be
// what task.ParseUPID and task.ValidateRemoteID accept. Nothing follows
// the last task of a payload.
//
// The JSON-lines format: task lines (above), one per line, each ending
// with a newline (PDM's format, and taskfleet's before the binary one).
// Both formats are read; a file is rewritten in the Writer's format the
// next time it is written (a merge that touches its period, its
// compression, a repair).
//
// Rotation (Writer.MaybeRotate, also run by Open) happens when the clock
// reaches the end of the newest period. It adds the new period(s) (after a
// downtime, every missed period within the retention), moves tasks that
// started in a new period out of the old newest one, merges the journal,
// writes the new files, rewrites the files that leave the plain window as
// .zst (the plain file is removed after the .zst is in place), writes the
// state, and then deletes the files of periods past the retention.
//
// # Journal
//
// The journal is a sequence of framed records:
//
//	record  = length:uint32 little-endian | crc:uint32 little-endian | payload[length]
//	crc     = CRC-32C (Castagnoli) of payload
//	payload = header line "\n" { task line "\n" }
//
// The header is a JSON object with a sequence number "seq" (one more than
// the previous record's, or than the state's journal_seq for the first
// record after a checkpoint) and an operation "op":
//
//	{"seq":7,"op":"apply","remote":"east","nodes":[{"node":"n1","ok":true}],"tasks":2}
//	    a Batch: the "tasks" task lines that follow and the node results
//	{"seq":8,"op":"track","remote":"east","upid":"UPID:..."}     Writer.Track
//	{"seq":9,"op":"untrack","remote":"east","upid":"UPID:..."}   Writer.Untrack
//	{"seq":10,"op":"drop","remote":"east"}                        Writer.DropRemote
//	{"seq":11,"op":"lower","before":1700006400}
//	    repair: every cutoff becomes at most "before"
//	{"seq":12,"op":"reset","cutoffs":{"east":{"n1":1700000000}}}
//	    repair: every cutoff becomes at most the one listed; unlisted ones are dropped
//
// A record is appended and fsynced before the Writer changes its state or
// returns; a change is acknowledged only when its record is durable. The
// state is a pure function of the checkpoint and the records after it, so
// cutoffs never advance before the tasks they cover are durable: they are
// recomputed from the very records that carry those tasks.
//
// The journal is merged (a checkpoint) by Writer.ApplyJournal (hourly),
// by Apply when it has grown past Options.JournalMaxBytes, by rotation and
// by Close: the tasks of the records go into the archive files of their
// periods, the state file is written with "journal_seq" = the last record's
// seq, and then the journal is truncated to zero length.
//
// # State file
//
// A header line and a JSON body:
//
//	taskfleet-cache-state 1 crc32c=<8 hex digits, CRC-32C of the body>
//	{"rotation":86400,"retention":7,"newest":1700006400,"journal_seq":12,
//	 "cutoffs":{"east":{"n1":1700000000},"backup1":{"localhost":1700001000}},
//	 "tracked":["pve:east!UPID:..."],
//	 "active":[<task line>, ...]}
//
// rotation and retention are those the files were written with; newest is
// the start of the newest period committed by a rotation; journal_seq is
// the last journal record the checkpoint includes; cutoffs are per remote
// and node (a PBS remote's node is "localhost"); tracked are the tracked
// tasks; active are the running tasks (tracked ones included).
//
// # Cutoffs
//
// After a batch, for every node whose fetch succeeded (NodeResult.OK): the
// cutoff becomes the newest start time among the batch's finished tasks of
// that node, if newer than the old cutoff; then, if the node has running
// tasks (in the active set after the batch, tracked ones included), it is
// lowered to the start time of the oldest. Nodes whose fetch failed keep
// their cutoff. A node without any finished task seen has no cutoff; the
// caller then fetches the whole retention.
//
// # Recovery
//
// Open, in this order: removes *.tmp; reads the state; chooses the kept
// periods (Retention periods ending with the newer of the state's newest and
// the newest archive file: a rotation that wrote its new files but crashed
// before its state is taken as done); loads the kept archive files, dropping
// repeated tasks and moving misplaced ones; loads the state into memory;
// replays the journal records whose seq is above the state's journal_seq
// (adding a task again is harmless, so records whose tasks already reached
// the archives replay correctly); journals and applies the repairs below;
// merges the journal (a checkpoint); deletes the files of periods outside
// the kept ones; and rotates when due. A crash at any point of any of
// these steps, or of any write, leaves files from which Open recovers every
// acknowledged change, each task once.
//
// # Corruption
//
// Damage is found when files are read (at Open): a line that is not a task
// line (or an archive line without end time), a last line without newline,
// a binary archive block that is torn, fails its checksum or does not
// decode (a task without end time, an undeclared string, a field out of
// range, bytes after the last task), a zstd stream that does not decode to
// its end, a journal record that is torn, fails its checksum or does not
// decode, a state file that fails its checksum, and an archive file that
// is missing although the state says its period is kept. Each is reported as a *CorruptionError (see
// Writer.Corruptions) and logged, and repaired without a loop:
//
//   - the file's good records are kept: an archive keeps its good lines,
//     or the blocks before the first damaged block (later blocks use its
//     strings), and, when compressed, only what was decoded before the
//     damage; the
//     journal is cut back to its last good record; a damaged state is
//     dropped;
//   - a copy of the damaged file is kept as <name>.broken (replacing an
//     older copy; archive copies go with their period);
//   - the cutoffs go back so that the next fetches re-request the range:
//     for a damaged or missing archive, every cutoff is lowered to the start
//     of its period ("lower"); for a damaged journal, every cutoff is capped
//     to its value at the last checkpoint and the nodes that had none lose
//     theirs ("reset"); for a lost state, all cutoffs are dropped. The
//     repair is journaled before the damaged file is rewritten, so a crash
//     during the repair does not lose it;
//   - the checkpoint rewrites the file from memory, so it is clean the next
//     time it is read.
package cache
