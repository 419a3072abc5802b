// Package diskspace is the free-disk watermark: a node below it refuses
// new writes (507 insufficient_storage at the HTTP edge) while reads and
// deletes go on, and reports itself not ready, so that it never fills its
// disk and dies in the middle of a write (Badger's memtable is a memory
// mapped file: a full filesystem is a SIGBUS, not an error).
//
// A Source says how much room there is (Statfs in production, a fake in
// tests); a Watermark, parsed from a flag such as "512MiB", "5%" or
// "5%,2GiB" (the smaller of the two), says how much must stay free; a
// Guard puts them together. docs/operations.md describes the flag.
package diskspace
