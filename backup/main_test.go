package backup_test

import (
	"testing"

	"github.com/raftkv/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
