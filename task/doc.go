// Package task holds taskfleet's domain types: Proxmox task ids (UPIDs) of
// Proxmox VE and Proxmox Backup Server, their remote-qualified form used by
// Proxmox Datacenter Manager, tasks, status classes and the query filters.
//
// The package depends on the standard library only, so every other package
// (client, simulator, cache, actors, API) can share it.
//
// The grammars follow pve-common's PVE::UPID and proxmox-schema's upid.rs
// exactly; see the fixtures' SOURCES.md. Parsing never panics, and for every
// accepted string s, Parse(s).String() == s: a UPID whose text is not the
// canonical rendering of its fields (lower-case hex, a needless escape)
// remembers its original text.
package task
