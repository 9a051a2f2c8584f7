package e2e

import (
	"encoding/json"
	"strings"
)

// logEntries returns the JSON log lines of out (zap's format, both ours and
// raftexample's) whose "msg" contains msg. Lines that are not JSON, such as
// raftexample's log.Printf output, are skipped.
func logEntries(out, msg string) []map[string]any {
	var found []map[string]any
	for line := range strings.Lines(out) {
		if !strings.Contains(line, msg) {
			continue
		}
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if m, _ := e["msg"].(string); strings.Contains(m, msg) {
			found = append(found, e)
		}
	}
	return found
}
