package faults

import (
	"testing"

	"github.com/raftkv/node/internal/nodeproc"
	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m, nodeproc.Cleanup) }
