// Package scenarios runs the in-process cluster scenarios (elections,
// writes and linearizable reads, an isolated leader, restarts, catch-up by
// snapshot, membership changes, learners, leadership transfer, the
// refusals of the membership checks) as data: each testdata/*.txt file is
// one scenario, a list of commands and the output each must print, run
// with github.com/cockroachdb/datadriven in the style of etcd-io/raft's
// interaction tests. The members are the real ones (internal/testcluster:
// actors, WAL, state machine, HTTP API), but raft's clock and the network
// belong to the test: raft ticks only when a command ticks it
// (actors.NodeConfig.ManualTick), and every message between members is
// held until a command delivers or drops it (transport.Network.Hold). So a
// scenario runs the same way, and prints the same output, every time.
//
// # Commands
//
//	start members=3 [snapshot-count=N] [catch-up-entries=N] [election-tick=N]
//	    a cluster of that many members, every message held from the start
//	start id=4            start a member that does not run: from its data
//	                      dir, or, the first time, joining the cluster
//	stop id=2             stop a member (its data dir stays)
//	restart id=2          stop a member if it runs, and start it again
//	tick id=1 [n=1]       move member 1's raft clock n ticks
//	campaign id=1         tick member 1 2×election-tick-1 times: it
//	                      campaigns (pre-vote first) once, whatever its
//	                      randomized election timeout
//	stabilize             deliver what is held, round after round, until
//	                      nothing is held and every member is idle
//	deliver [from=] [to=] [type=MsgApp]
//	drop [from=] [to=] [type=]
//	                      deliver or drop the held messages that match
//	held                  the held messages, counted by sender, receiver
//	                      and type
//	isolate id=1 | cut from=1 to=2 | heal
//	                      network faults; they apply when a message is
//	                      delivered, so a message held before a heal is
//	                      delivered after it
//	put id=1 key=k value=v   (or one key=value per input line)
//	get id=2 key=k [serializable=true]
//	add-member id=4 [learner=true] [via=1]   (names member 4 if it is new)
//	promote id=4 [via=1]
//	remove id=4 [via=1]
//	transfer-leader to=2 [via=1]
//	                      client requests through a member's HTTP API (via
//	                      defaults to the leader); each waits only until
//	                      the member took the request in, since its answer
//	                      may need messages delivered
//	results               wait for the answer to every request not printed
//	                      yet, and print them in request order
//	status                each member's raft state, term, leader, commit
//	                      and applied index, members and learners
//	digest                whether the running members' states are equal
//	snapshots             how many snapshots the network delivered
//
// Every command returns with every running member idle (env.settle), so
// the next one starts from a state that no longer moves by itself.
//
// # Adding a scenario
//
// Write a new testdata/<name>.txt with its commands, each followed by a
// "----" line and, for now, no output; then run
//
//	go test ./tests/scenarios -run TestScenarios/<name> -rewrite
//
// which fills in the output each command prints. Read it: the file is the
// scenario's assertions from then on. Run it a few dozen times
// (-count=20 -race) before committing, to be sure it prints the same
// output every time. The same -rewrite after a deliberate change of
// behaviour rewrites the expected output of every scenario; the diff shows
// what changed. Set RAFTKV_TEST_LOG=1 to see the members' logs.
package scenarios
