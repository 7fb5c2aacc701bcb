package wire

import (
	"context"
	"testing"
	"time"

	"corral/engine/store"
	"corral/engine/usage"
	"corral/proxy/gateway"
)

// A settled request keeps its queue time apart in the usage record.
func TestMeterRecordsQueueTime(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := usage.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Meter{M: m}.Reserve(context.Background(), "alice", "llama3.2:1b", 10)
	if err != nil {
		t.Fatal(err)
	}
	r.Settle(gateway.Usage{Key: "alice", Model: "llama3.2:1b", Status: 200, PromptTokens: 3, CompletionTokens: 4,
		TTFT: 2 * time.Second, Queued: 1500 * time.Millisecond, Duration: 3 * time.Second})
	rows, err := m.Query(context.Background(), usage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0] != (usage.Row{Group: "alice", Requests: 1, PromptTokens: 3, CompletionTokens: 4, Queued: 1500 * time.Millisecond}) {
		t.Fatalf("rows = %+v", rows)
	}
}
