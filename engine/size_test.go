package engine

import "testing"

// TestIECBytes: one decimal in the largest unit that keeps the number at
// 1 or more, so nothing reads as 0.0 GiB.
func TestIECBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{42949673, "41.0 MiB"}, // 0.04 GiB
		{1<<20 - 1, "1.0 MiB"}, // not 1024.0 KiB
		{1<<30 - 1<<10, "1.0 GiB"},
		{16 << 30, "16.0 GiB"},
		{1288490189, "1.2 GiB"},
		{3 << 40, "3.0 TiB"},
		{-2048, "-2.0 KiB"},
	} {
		if got := IECBytes(tc.n); got != tc.want {
			t.Errorf("IECBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
