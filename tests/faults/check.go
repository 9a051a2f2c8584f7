package faults

import (
	"errors"
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// ErrNotLinearizable is returned by Check when porcupine proves the history
// has no linearization: the cluster broke its consistency guarantee.
var ErrNotLinearizable = errors.New("history is not linearizable")

// ErrCheckTimedOut is returned by Check when porcupine found no violation
// but did not finish within the timeout, so the history is neither proven
// linearizable nor proven wrong.
var ErrCheckTimedOut = errors.New("linearizability check timed out")

// Result describes a finished check.
type Result struct {
	// Outcome is porcupine's verdict: Ok, Illegal or Unknown (timed out).
	Outcome porcupine.CheckResult
	// Operations is how many operations were checked.
	Operations int
	// HTMLPath is where the visualization was written; empty unless the
	// history was illegal and a path was given.
	HTMLPath string
	// Info is porcupine's linearization data, for a caller that wants its
	// own visualization (e.g. with annotations of the injected faults).
	Info porcupine.LinearizationInfo
}

// Check runs porcupine over ops with the KV model. A timeout of 0 means no
// limit. When the history is illegal and htmlPath is not empty the
// visualization is written there, and the error names the file.
func Check(ops []porcupine.Operation, timeout time.Duration, htmlPath string) (Result, error) {
	model := KVModel()
	outcome, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	res := Result{Outcome: outcome, Operations: len(ops), Info: info}
	switch outcome {
	case porcupine.Ok:
		return res, nil
	case porcupine.Unknown:
		return res, fmt.Errorf("%w after %v on %d operations", ErrCheckTimedOut, timeout, len(ops))
	case porcupine.Illegal:
		if htmlPath == "" {
			return res, fmt.Errorf("%w (%d operations; no visualization requested)", ErrNotLinearizable, len(ops))
		}
		if err := porcupine.VisualizePath(model, info, htmlPath); err != nil {
			return res, fmt.Errorf("%w (%d operations); writing the visualization to %s: %w",
				ErrNotLinearizable, len(ops), htmlPath, err)
		}
		res.HTMLPath = htmlPath
		return res, fmt.Errorf("%w (%d operations): see %s", ErrNotLinearizable, len(ops), htmlPath)
	}
	return res, fmt.Errorf("porcupine returned an unexpected verdict %q", outcome)
}

// Check checks the recorder's history; see the package function Check.
func (r *Recorder) Check(timeout time.Duration, htmlPath string) (Result, error) {
	return Check(r.Operations(), timeout, htmlPath)
}
