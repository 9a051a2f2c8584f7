package faults

import (
	"reflect"
	"testing"
)

func TestParseWatchMsg(t *testing.T) {
	good := []struct {
		data string
		want WatchMsg
	}{
		{`{"revision":58,"events":[{"type":"put","key":"a","value":"2","create_revision":3,"mod_revision":58,"version":3},{"type":"delete","key":"b","mod_revision":58}]}`,
			WatchMsg{Revision: 58, Events: []WatchEvent{
				{Type: "put", Key: "a", Value: "2", CreateRevision: 3, ModRevision: 58, Version: 3},
				{Type: "delete", Key: "b", ModRevision: 58}}}},
		{`{"revision":9,"events":[{"type":"put","key_b64":"/w==","value_b64":"AAE=","create_revision":9,"mod_revision":9,"version":1}]}`,
			WatchMsg{Revision: 9, Events: []WatchEvent{{Type: "put", Key: "\xff", Value: "\x00\x01", CreateRevision: 9, ModRevision: 9, Version: 1}}}},
		{`{"revision":9,"events":[{"type":"put","key":"a","value":"","create_revision":9,"mod_revision":9,"version":1}]}`,
			WatchMsg{Revision: 9, Events: []WatchEvent{{Type: "put", Key: "a", CreateRevision: 9, ModRevision: 9, Version: 1}}}},
		{`{"revision":9,"events":[{"type":"put","key":"a","value":"1","create_revision":9,"mod_revision":9,"version":1,"lease":"7587868840428213761"}]}`,
			WatchMsg{Revision: 9, Events: []WatchEvent{{Type: "put", Key: "a", Value: "1", CreateRevision: 9, ModRevision: 9, Version: 1, Lease: 7587868840428213761}}}},
	}
	for _, tc := range good {
		got, err := parseWatchMsg(tc.data)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseWatchMsg(%s) = %+v, %v; want %+v", tc.data, got, err, tc.want)
		}
	}
	bad := []string{
		`{"revision":58,"events":[{"type":"put","key":"a","value":"2"}]`, // not JSON
		`{"events":[]}`, // no revision
		`{"revision":0,"events":[]}`,
		`{"revision":5}`, // no events
		`{"revision":5,"events":[{"type":"put","value":"2"}]}`,                            // no key
		`{"revision":5,"events":[{"type":"put","key":"a"}]}`,                              // a put without its value
		`{"revision":5,"events":[{"type":"delete","key":"a","value":"x"}]}`,               // a delete with one
		`{"revision":5,"events":[{"type":"expire","key":"a"}]}`,                           // unknown type
		`{"revision":5,"events":[{"type":"put","key":"a","value_b64":"!!"}]}`,             // bad base64
		`{"revision":5,"events":[{"type":"put","key":"a","key_b64":"YQ==","value":"1"}]}`, // both
		`{"revision":5,"events":[{"type":"put","key":"a","value":"1","lease":"x"}]}`,      // not a lease id
		`{"revision":5,"events":[{"type":"put","key":"a","value":"1","lease":"0"}]}`,      // no lease is no field
		`{"revision":5,"events":[{"type":"put","key":"a","value":"1","lease":7}]}`,        // a number
		`{"revision":5,"events":[{"type":"delete","key":"a","lease":"7"}]}`,               // a delete with one
	}
	for _, data := range bad {
		if got, err := parseWatchMsg(data); err == nil {
			t.Errorf("parseWatchMsg(%s) = %+v, want an error", data, got)
		}
	}
}

func TestParseWatchMark(t *testing.T) {
	if rev, _, err := parseWatchMark("progress", `{"revision":75}`); err != nil || rev != 75 {
		t.Errorf("progress = %d, %v", rev, err)
	}
	if rev, reason, err := parseWatchMark("end", `{"resume_revision":80,"reason":"overflow"}`); err != nil || rev != 80 || reason != "overflow" {
		t.Errorf("end = %d %q, %v", rev, reason, err)
	}
	for _, tc := range [][2]string{{"progress", `{}`}, {"progress", `x`}, {"end", `{"reason":"reset"}`},
		{"end", `{"resume_revision":0,"reason":"reset"}`}, {"end", `{"resume_revision":3}`}} {
		if _, _, err := parseWatchMark(tc[0], tc[1]); err == nil {
			t.Errorf("parseWatchMark(%s, %s): no error", tc[0], tc[1])
		}
	}
}
