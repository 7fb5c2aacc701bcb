package gpu

import (
	"slices"
	"testing"
)

func TestSelect(t *testing.T) {
	two := Inventory{Devices: []Device{
		{Index: 0, UUID: "GPU-aaaaaaaa-0000-4000-8000-000000000000", Name: "NVIDIA A100-SXM4-40GB"},
		{Index: 1, UUID: "GPU-bbbbbbbb-0000-4000-8000-000000000001", Name: "NVIDIA A100-SXM4-40GB"},
	}}
	four := Inventory{Devices: []Device{{Index: 0}, {Index: 1}, {Index: 2}, {Index: 3}}}
	gap := Inventory{Devices: []Device{{Index: 0}, {Index: 1}, {Index: 2}, {Index: 4}}}
	one := Inventory{Devices: []Device{{Index: 0, UUID: "GPU-aaaaaaaa"}}}
	noDriver := Inventory{Reason: "NVML not found: libnvidia-ml.so.1 could not be loaded; install the NVIDIA driver"}

	tests := []struct {
		name    string
		inv     Inventory
		spec    string
		want    []int // indexes
		wantErr string
	}{
		{name: "all", inv: four, spec: "all", want: []int{0, 1, 2, 3}},
		{name: "all upper case and spaced", inv: two, spec: " ALL ", want: []int{0, 1}},
		{name: "all without GPUs", inv: noDriver, spec: "all", want: nil},
		{name: "none", inv: four, spec: "none", want: nil},
		{name: "none without GPUs", inv: noDriver, spec: "none", want: nil},
		{name: "indexes", inv: four, spec: "0,2", want: []int{0, 2}},
		{name: "indexes sorted, spaces allowed", inv: four, spec: "3, 1", want: []int{1, 3}},
		{name: "uuid", inv: two, spec: "GPU-bbbbbbbb-0000-4000-8000-000000000001", want: []int{1}},
		{name: "uuid any case, mixed with index", inv: two, spec: "gpu-BBBBBBBB-0000-4000-8000-000000000001,0", want: []int{0, 1}},
		{
			name: "missing index", inv: two, spec: "9",
			wantErr: "--gpus 9: no GPU with index 9 (this host has GPUs 0-1)",
		},
		{
			name: "missing index in a list", inv: gap, spec: "0,3",
			wantErr: "--gpus 0,3: no GPU with index 3 (this host has GPUs 0-2,4)",
		},
		{
			name: "missing index on one GPU", inv: one, spec: "1",
			wantErr: "--gpus 1: no GPU with index 1 (this host has GPU 0)",
		},
		{
			name: "index too large", inv: two, spec: "99999999999999999999",
			wantErr: "--gpus 99999999999999999999: no GPU with index 99999999999999999999 (this host has GPUs 0-1)",
		},
		{
			name: "missing uuid", inv: two, spec: "GPU-cccc",
			wantErr: "--gpus GPU-cccc: no GPU with UUID GPU-cccc (this host has GPUs 0-1)",
		},
		{
			name: "no GPUs", inv: noDriver, spec: "0",
			wantErr: "--gpus 0: no GPUs found (NVML not found: libnvidia-ml.so.1 could not be loaded; " +
				"install the NVIDIA driver); use --gpus none to run in CPU mode",
		},
		{
			name: "no GPUs, no reason", inv: Inventory{}, spec: "GPU-aaaaaaaa",
			wantErr: "--gpus GPU-aaaaaaaa: no GPUs found; use --gpus none to run in CPU mode",
		},
		{
			name: "not an index", inv: two, spec: "a",
			wantErr: `--gpus a: "a" is not a GPU index or UUID; use all, none, or a list like 0,2`,
		},
		{
			name: "negative", inv: two, spec: "-1",
			wantErr: `--gpus -1: "-1" is not a GPU index or UUID; use all, none, or a list like 0,2`,
		},
		{
			name: "all inside a list", inv: two, spec: "all,0",
			wantErr: `--gpus all,0: "all" is not a GPU index or UUID; use all, none, or a list like 0,2`,
		},
		{
			name: "duplicate", inv: two, spec: "0,0",
			wantErr: "--gpus 0,0: GPU 0 is listed twice",
		},
		{
			name: "duplicate by uuid", inv: two, spec: "1,GPU-bbbbbbbb-0000-4000-8000-000000000001",
			wantErr: "--gpus 1,GPU-bbbbbbbb-0000-4000-8000-000000000001: GPU 1 is listed twice",
		},
		{
			name: "empty", inv: two, spec: "",
			wantErr: `--gpus "": empty value; use all, none, or GPU indexes or UUIDs like 0,2`,
		},
		{
			name: "blank", inv: two, spec: "  ",
			wantErr: `--gpus "  ": empty value; use all, none, or GPU indexes or UUIDs like 0,2`,
		},
		{
			name: "empty item", inv: two, spec: "0,,1",
			wantErr: "--gpus 0,,1: empty item in the list",
		},
		{
			name: "trailing comma", inv: two, spec: "0,",
			wantErr: "--gpus 0,: empty item in the list",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(tt.inv, tt.spec)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Select(%q) = %v, want error %q", tt.spec, got, tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("Select(%q) error\n got: %s\nwant: %s", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select(%q): %v", tt.spec, err)
			}
			var idx []int
			for _, d := range got {
				idx = append(idx, d.Index)
				if want := tt.inv.Devices[slices.IndexFunc(tt.inv.Devices, func(x Device) bool { return x.Index == d.Index })]; d != want {
					t.Errorf("device %d = %+v, want %+v", d.Index, d, want)
				}
			}
			if !slices.Equal(idx, tt.want) {
				t.Errorf("Select(%q) indexes = %v, want %v", tt.spec, idx, tt.want)
			}
		})
	}
}

func TestSelectAllCopies(t *testing.T) {
	inv := Inventory{Devices: []Device{{Index: 0, Name: "a"}}}
	got, err := Select(inv, "all")
	if err != nil {
		t.Fatal(err)
	}
	got[0].Name = "changed"
	if inv.Devices[0].Name != "a" {
		t.Error("Select(all) returned the inventory's own slice")
	}
}
