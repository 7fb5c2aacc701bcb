package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// parsedGGUF is a GGUF file read back by parseGGUF.
type parsedGGUF struct {
	version  uint32
	keys     []string // in file order
	kvs      map[string]any
	tensors  []tensorInfo
	dataAt   uint64 // start of the data section
	fileSize int
}

type tensorInfo struct {
	name   string
	shape  []uint64
	typ    uint32
	offset uint64
}

// ggufReader reads little-endian values and remembers the first error.
type ggufReader struct {
	b   []byte
	pos int
	err error
}

func (r *ggufReader) next(n int) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if n < 0 || r.pos+n > len(r.b) {
		r.err = fmt.Errorf("short file at %d reading %d bytes", r.pos, n)
		return make([]byte, max(n, 0))
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p
}

func (r *ggufReader) u32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }
func (r *ggufReader) u64() uint64 { return binary.LittleEndian.Uint64(r.next(8)) }

func (r *ggufReader) str() string {
	n := r.u64()
	if n > 1<<20 {
		r.err = fmt.Errorf("string of %d bytes", n)
		return ""
	}
	return string(r.next(int(n)))
}

func (r *ggufReader) value(typ uint32) any {
	switch typ {
	case ggufString:
		return r.str()
	case ggufBool:
		return r.next(1)[0] != 0
	case ggufUint32:
		return r.u32()
	case ggufInt32:
		return int32(r.u32())
	case ggufUint64:
		return r.u64()
	case ggufFloat32:
		return math.Float32frombits(r.u32())
	case ggufArray:
		elem, n := r.u32(), r.u64()
		if n > 1<<16 {
			r.err = fmt.Errorf("array of %d", n)
			return nil
		}
		switch elem {
		case ggufString:
			v := make([]string, n)
			for i := range v {
				v[i] = r.str()
			}
			return v
		case ggufInt32:
			v := make([]int32, n)
			for i := range v {
				v[i] = int32(r.u32())
			}
			return v
		case ggufFloat32:
			v := make([]float32, n)
			for i := range v {
				v[i] = math.Float32frombits(r.u32())
			}
			return v
		}
		r.err = fmt.Errorf("array of type %d", elem)
		return nil
	}
	r.err = fmt.Errorf("value type %d", typ)
	return nil
}

// parseGGUF reads the header, metadata and tensor infos of a GGUF file.
func parseGGUF(b []byte) (parsedGGUF, error) {
	r := &ggufReader{b: b}
	if magic := string(r.next(4)); magic != ggufMagic {
		return parsedGGUF{}, fmt.Errorf("magic %q", magic)
	}
	p := parsedGGUF{version: r.u32(), kvs: map[string]any{}, fileSize: len(b)}
	nt, nkv := r.u64(), r.u64()
	for range nkv {
		k := r.str()
		v := r.value(r.u32())
		if r.err != nil {
			return p, fmt.Errorf("key %q: %w", k, r.err)
		}
		if _, dup := p.kvs[k]; dup {
			return p, fmt.Errorf("duplicate key %q", k)
		}
		p.keys = append(p.keys, k)
		p.kvs[k] = v
	}
	for range nt {
		t := tensorInfo{name: r.str()}
		dims := r.u32()
		for range dims {
			t.shape = append(t.shape, r.u64())
		}
		t.typ, t.offset = r.u32(), r.u64()
		p.tensors = append(p.tensors, t)
	}
	if r.err != nil {
		return p, r.err
	}
	p.dataAt = uint64(r.pos) + padding(uint64(r.pos), ggufAlignment)
	return p, nil
}

// tensorData reads back the F32 values of tensor i.
func (p parsedGGUF) tensorData(b []byte, i int) []float32 {
	t := p.tensors[i]
	n := uint64(1)
	for _, d := range t.shape {
		n *= d
	}
	at := p.dataAt + t.offset
	v := make([]float32, n)
	for j := range v {
		v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[at+4*uint64(j):]))
	}
	return v
}

func TestWriteGGUFRoundTrip(t *testing.T) {
	kvs := []kv{
		{"general.architecture", "llama"},
		{"a.string", "héllo"},
		{"a.empty", ""},
		{"a.true", true},
		{"a.false", false},
		{"a.uint32", uint32(4_000_000_000)},
		{"a.int32", int32(-7)},
		{"a.uint64", uint64(1) << 40},
		{"a.float32", float32(1e-5)},
		{"a.strings", []string{"x", "", "Ġ"}},
		{"a.no_strings", []string{}},
		{"a.int32s", []int32{1, -1, 3}},
		{"a.float32s", []float32{0.5, -2}},
	}
	// Sizes that leave padding: 3 values are 12 bytes, 10 are 40.
	tensors := []tensor{
		{name: "a", shape: []uint64{3}, data: []float32{1, 2, 3}},
		{name: "b.weight", shape: []uint64{5, 2}, data: []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, -9.5}},
		{name: "c", shape: []uint64{8}, data: make([]float32, 8)},
	}
	var buf bytes.Buffer
	n, err := writeGGUF(&buf, kvs, tensors)
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if n != int64(len(b)) {
		t.Errorf("writeGGUF returned %d, wrote %d bytes", n, len(b))
	}
	p, err := parseGGUF(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.version != 3 {
		t.Errorf("version %d, want 3", p.version)
	}
	for i, want := range kvs {
		if i >= len(p.keys) || p.keys[i] != want.key {
			t.Fatalf("keys %q, want %v in order", p.keys, kvs)
		}
		if got := p.kvs[want.key]; !reflect.DeepEqual(got, want.value) {
			t.Errorf("%s = %#v, want %#v", want.key, got, want.value)
		}
	}
	if len(p.keys) != len(kvs) {
		t.Errorf("%d keys, want %d", len(p.keys), len(kvs))
	}
	if p.dataAt%ggufAlignment != 0 {
		t.Errorf("data section at %d, not aligned to %d", p.dataAt, ggufAlignment)
	}
	if len(p.tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(p.tensors), len(tensors))
	}
	wantOffsets := []uint64{0, 32, 96}
	for i, want := range tensors {
		got := p.tensors[i]
		if got.name != want.name || !reflect.DeepEqual(got.shape, want.shape) || got.typ != ggmlF32 {
			t.Errorf("tensor %d = %+v, want %s %v F32", i, got, want.name, want.shape)
		}
		if got.offset != wantOffsets[i] || got.offset%ggufAlignment != 0 {
			t.Errorf("tensor %s at offset %d, want %d", want.name, got.offset, wantOffsets[i])
		}
		if data := p.tensorData(b, i); !reflect.DeepEqual(data, want.data) {
			t.Errorf("tensor %s data %v, want %v", want.name, data, want.data)
		}
	}
	// The last tensor (32 bytes) ends the file, padded to the alignment.
	if want := p.dataAt + 96 + 32; uint64(len(b)) != want {
		t.Errorf("file is %d bytes, want %d", len(b), want)
	}
}

func TestWriteGGUFErrors(t *testing.T) {
	tests := []struct {
		name    string
		kvs     []kv
		tensors []tensor
		want    string
	}{
		{"value type", []kv{{"k", 1.5}}, nil, "k: unsupported value type float64"},
		{"int value", []kv{{"k", 1}}, nil, "unsupported value type int"},
		{"data length", nil, []tensor{{name: "t", shape: []uint64{2, 2}, data: make([]float32, 3)}}, "3 values for shape [2 2]"},
		{"no shape", nil, []tensor{{name: "t"}}, "bad name or shape"},
		{"no name", nil, []tensor{{shape: []uint64{1}, data: []float32{1}}}, "bad name or shape"},
		{"five dims", nil, []tensor{{name: "t", shape: []uint64{1, 1, 1, 1, 1}, data: []float32{1}}}, "bad name or shape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := writeGGUF(&buf, tt.kvs, tt.tensors)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestPadding(t *testing.T) {
	tests := []struct{ offset, want uint64 }{{0, 0}, {1, 31}, {31, 1}, {32, 0}, {33, 31}, {100, 28}}
	for _, tt := range tests {
		if got := padding(tt.offset, 32); got != tt.want {
			t.Errorf("padding(%d, 32) = %d, want %d", tt.offset, got, tt.want)
		}
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteGGUFWriteError(t *testing.T) {
	kvs, ts, err := tinyLlama(defaultSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10_000, 200_000} {
		if _, err := writeGGUF(&errWriter{n: n}, kvs, ts); err == nil || err.Error() != "disk full" {
			t.Errorf("after %d bytes: err = %v, want disk full", n, err)
		}
	}
}
