// Command loopfloor measures what the kernel alone charges for a notify
// fan-out over loopback: one process writes one line to each of N
// established TCP connections, the way stratumd's fan-out does, with
// nothing else in the way (no JSON, no sessions, no locks). Its times are
// the floor under any pool's "new tip reaches the last of N miners" on the
// machine, and show how much of stratumd's fan-out time is stratumd.
//
// On loopback the writer also pays for the receiving side: the kernel
// delivers each segment into the peer's socket, wakes its reader and
// handles the peer's ACK, all inside the writer's write(2). A receiver on
// its own machine would take half of that work away.
//
// Usage:
//
//	loopfloor -conns 10000 -size 362 -workers 8 -rounds 10 -pause 1s -reader stopped|read
//
// The connections' far ends live in a child process (this binary again).
// With -reader stopped the child is stopped (SIGSTOP) while the writes run,
// so nothing competes for the cores: the pure write cost. With -reader read
// every far end has a goroutine reading and discarding, the cheapest
// possible miners sharing the cores at equal priority. Each round writes a
// -size byte line (362 bytes is a mining.notify without transactions) to
// every connection on -workers goroutines and reports how long the last
// write took to return.
//
// main.go (unix) holds the writer, the child with the far ends and the
// rounds; main_other.go only says that other systems are not supported.
//
// It imports internal/rlimit and the standard library only, and must not
// import internal/stratum, internal/stratum/wire or any other part of the
// pool: its number is the kernel's alone, the floor stratumd's is compared
// with.
package main
