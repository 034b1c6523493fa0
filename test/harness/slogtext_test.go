package harness

import "testing"

func TestParseSignRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want SignRecord
		ok   bool
	}{
		{
			name: "prevote",
			line: `time=2026-11-23T14:00:00.000Z level=INFO msg="signed prevote" chain=kira-1 node=tcp://127.0.0.1:26659 height=51 round=0 block=ABC123 latency=1.2ms`,
			want: SignRecord{Step: "prevote", Height: 51, Round: 0, Block: "ABC123", Chain: "kira-1", Node: "tcp://127.0.0.1:26659"},
			ok:   true,
		},
		{
			name: "nil precommit with quoted empty block",
			line: `time=x level=INFO msg="signed precommit" chain="a b" node=unix:///tmp/s height=7 round=2 block="" latency=1ms`,
			want: SignRecord{Step: "precommit", Height: 7, Round: 2, Block: "", Chain: "a b", Node: "unix:///tmp/s"},
			ok:   true,
		},
		{
			name: "refusal",
			line: `time=x level=WARN msg="refused double sign" chain=c height=7 round=0 err="height regression"`,
			ok:   false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseSignRecord(tc.line)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			got.Line = ""
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
