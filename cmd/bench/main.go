package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	// The first interrupt ends the timed phase early and still prints the
	// report; stop then restores the default, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	var progress io.Writer
	if isTerminal(os.Stderr) {
		progress = os.Stderr
	}
	lg := newLogger(os.Stderr)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, progress, lg)
	stop()
	_ = lg.Sync()
	os.Exit(code)
}

// runMain is the whole command but for the process: it returns the exit
// status, 0 for a finished run (errors and all), 1 when the run failed or
// nothing was acknowledged, 2 for a bad command line.
func runMain(ctx context.Context, args []string, stdout, stderr, progress io.Writer, lg *zap.Logger) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	cfg.runID = newRunID()
	res, err := runBench(ctx, cfg, lg, progress)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if cfg.json {
		err = writeJSON(stdout, res)
	} else {
		err = writeText(stdout, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if res.all().ok == 0 {
		fmt.Fprintln(stderr, "bench:", errNothingAcknowledged)
		return 1
	}
	return 0
}

// newRunID is a short random name for the run, part of every key.
func newRunID() string {
	return strconv.FormatUint(uint64(rand.Uint32()), 36)
}

// newLogger logs progress notes (leader found, preload started) to w,
// without timestamps' clutter beyond the time of day.
func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zapcore.InfoLevel)
	return zap.New(core)
}
