package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/raftkv/node/backup"
	"github.com/raftkv/node/tlsfiles"
)

// snapshotTimeout bounds taking a backup: a db of gigabytes streams in
// seconds on a LAN; a member that stalls for this long is not serving it.
const snapshotTimeout = 10 * time.Minute

// snapshotUsage is the usage of `node snapshot`.
const snapshotUsage = `Usage:
  node snapshot save [--endpoints URL[,URL...]] [--cacert FILE] [--cert FILE] [--key FILE] FILE
      takes a backup of a member's db into FILE (written whole or not at all),
      from the first endpoint that serves one, and prints what it holds
  node snapshot status FILE
      checks a backup's checksum and prints what it holds
  node snapshot restore FILE --id ID --cluster URLS --initial-cluster-token NAME [--data-dir DIR]
      makes member ID's data dir for a new cluster from a backup; run it for
      every member with the same --cluster and token, then start each with
      the usual command (the same --id, --cluster, --initial-cluster-token
      and --data-dir)
`

// runSnapshot runs `node snapshot ...` and returns the exit status: 0 done,
// 1 failed, 2 bad arguments (one line on stderr).
func runSnapshot(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, snapshotUsage)
		return 2
	}
	switch args[0] {
	case "save":
		return snapshotSave(args[1:], stdout, stderr)
	case "status":
		return snapshotStatus(args[1:], stdout, stderr)
	case "restore":
		return snapshotRestore(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, snapshotUsage)
		return 0
	}
	fmt.Fprintf(stderr, "node snapshot: unknown command %q: save, status or restore\n", args[0])
	return 2
}

func snapshotSave(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node snapshot save", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	endpoints := fs.String("endpoints", "http://127.0.0.1:12380", "comma-separated client URLs of members")
	ca := fs.String("cacert", "", "CA that signed the members' client certificates (https endpoints)")
	cert := fs.String("cert", "", "client certificate, for members with --client-cert-auth")
	key := fs.String("key", "", "the client certificate's key")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "node snapshot save: %v\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "node snapshot save: name one file to write the backup to")
		return 2
	}
	tc, err := tlsfiles.NewClient(tlsfiles.Files{CertFile: *cert, KeyFile: *key, TrustedCAFile: *ca}, nil)
	if err != nil {
		fmt.Fprintf(stderr, "node snapshot save: %v\n", err)
		return 2
	}
	client := &http.Client{Transport: &http.Transport{
		DialTLSContext: tc.DialTLSContext(&net.Dialer{Timeout: 5 * time.Second}),
	}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	var errs []error
	for _, ep := range strings.Split(*endpoints, ",") {
		info, err := backup.Save(ctx, client, strings.TrimSpace(ep), fs.Arg(0))
		if err == nil {
			printInfo(stdout, fs.Arg(0), info)
			return 0
		}
		errs = append(errs, err)
	}
	fmt.Fprintf(stderr, "node snapshot save: %v\n", strings.ReplaceAll(errors.Join(errs...).Error(), "\n", "; "))
	return 1
}

func snapshotStatus(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "node snapshot status: name one backup file")
		return 2
	}
	info, err := backup.Status(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "node snapshot status: %v\n", err)
		return 1
	}
	printInfo(stdout, args[0], info)
	return 0
}

func printInfo(w io.Writer, path string, info backup.Info) {
	fmt.Fprintf(w, "%s: revision %d, index %d, %d keys, %d bytes, sha256 %s\n",
		path, info.Revision, info.Index, info.Keys, info.Size, hex.EncodeToString(info.Sum[:]))
}
