package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/raftkv/node/backup"
	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/membership"
)

// snapshotRestore runs `node snapshot restore FILE --id ... --cluster ...
// --initial-cluster-token ...` (flags before or after FILE, as etcdutl
// takes them).
func snapshotRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node snapshot restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	id := fs.Uint64("id", 0, "this member's id in the new cluster")
	cluster := fs.String("cluster", "", "the new cluster's peer URLs, as node's --cluster")
	token := fs.String("initial-cluster-token", "", "the new cluster's name, from which its id is derived")
	dataDir := fs.String("data-dir", "", "the data dir to make (default ./node-<id>); absent or empty")
	file, err := parseAround(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "node snapshot restore: %v\n", err)
		return 2
	}
	peers, err := membership.ParseCluster(*cluster, reqid.Shares)
	switch {
	case *cluster == "":
		err = errors.New("--cluster is required: the new cluster's peer URLs")
	case err != nil:
	case *token == "":
		// The same --cluster and token would derive the old cluster's
		// id, and members of the old cluster still running could then
		// talk to the new one as if they were its members.
		err = errors.New("--initial-cluster-token is required: a name the old cluster does not have, so that the new cluster gets an id of its own")
	case *id == 0:
		err = errors.New("--id is required: this member's id in --cluster")
	case peers[*id] == "":
		err = fmt.Errorf("--id %d is not in --cluster (%d members)", *id, len(peers))
	}
	if err != nil {
		fmt.Fprintf(stderr, "node snapshot restore: %v\n", err)
		return 2
	}
	if *dataDir == "" {
		*dataDir = "node-" + strconv.FormatUint(*id, 10)
	}
	cid := membership.ClusterID(peers, *token)
	info, err := backup.Restore(backup.RestoreConfig{
		Backup:         file,
		DataDir:        *dataDir,
		ID:             *id,
		Members:        peers,
		ClusterID:      cid,
		InitialCluster: membership.FormatCluster(peers),
		Token:          *token,
	})
	if err != nil {
		fmt.Fprintf(stderr, "node snapshot restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: member %d of cluster %s, from revision %d, index %d, %d keys\n",
		*dataDir, *id, membership.FormatClusterID(cid), info.Revision, info.Index, info.Keys)
	return 0
}

// parseAround parses flags given before or after the one file argument.
func parseAround(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", errors.New("name the backup file to restore")
	}
	file := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return file, nil
}
