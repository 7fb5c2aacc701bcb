package wire

import (
	"context"
	"slices"
	"testing"

	"corral/engine/store"
)

// The allowed origins change live, survive a restart, and a bad list
// changes nothing.
func TestCORSStoredAndLive(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCORS(st)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.AllowOrigin("https://app.example.com"); ok || len(c.Origins()) != 0 {
		t.Fatalf("off by default: allowed %v, origins %v", ok, c.Origins())
	}
	ctx := context.Background()
	if err := c.SetOrigins(ctx, []string{"https://App.example.com:443/", " http://localhost:5173"}); err != nil {
		t.Fatal(err)
	}
	if ok, any := c.AllowOrigin("https://app.example.com"); !ok || any {
		t.Fatalf("allowed %v any %v", ok, any)
	}
	if err := c.SetOrigins(ctx, []string{"https://b.example", "b.example"}); err == nil {
		t.Fatal("a bad origin was taken")
	}
	want := []string{"https://app.example.com", "http://localhost:5173"}
	if got := c.Origins(); !slices.Equal(got, want) {
		t.Fatalf("after a refused change: %v", got)
	}
	st.Close()
	if st, err = store.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if c, err = NewCORS(st); err != nil {
		t.Fatal(err)
	}
	if got := c.Origins(); !slices.Equal(got, want) {
		t.Fatalf("after a restart: %v", got)
	}
	if ok, _ := c.AllowOrigin("http://localhost:5173"); !ok {
		t.Fatal("stored origin not allowed after a restart")
	}
}
