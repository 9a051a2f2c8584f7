// Package faults is the test infrastructure of the fault-injection suite:
// it runs cmd/node processes, injects faults into them and between them
// (kill, pause, network partitions through a proxy in front of each
// member's peer port, a torn WAL tail), drives concurrent clients against
// the cluster, records their history and checks it for linearizability
// with porcupine. It sends and receives no actor messages; it speaks HTTP
// to the members like any client. Only tests import it.
package faults
