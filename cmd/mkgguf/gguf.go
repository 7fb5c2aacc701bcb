package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// The GGUF v3 container, as ggml and Ollama read it (ggml's gguf.cpp,
// Ollama's fs/ggml/gguf.go): little-endian; a header (magic, version,
// tensor count, metadata count); the metadata pairs; one info record per
// tensor (name, dimensions, type, offset into the data section); padding to
// the alignment; then the tensor data, each tensor starting at a multiple
// of the alignment from the start of the data section.

const (
	ggufMagic   = "GGUF"
	ggufVersion = 3
	// ggufAlignment is GGUF's default (general.alignment unset).
	ggufAlignment = 32
)

// GGUF metadata value types (gguf_type).
const (
	ggufUint8 uint32 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

// ggmlF32 is ggml_type GGML_TYPE_F32, the only tensor type written here.
const ggmlF32 uint32 = 0

// kv is one metadata pair. value is a string, bool, uint32, int32, uint64,
// float32, []string, []int32 or []float32; readers check the exact type
// (Ollama reads llama.block_count only as a uint32), so it matters.
type kv struct {
	key   string
	value any
}

// tensor is an F32 tensor. shape is in ggml order: shape[0] is the
// contiguous dimension, so a [in, out] weight holds out rows of in values.
type tensor struct {
	name  string
	shape []uint64
	data  []float32
}

// elements is the product of the dimensions.
func (t tensor) elements() uint64 {
	n := uint64(1)
	for _, d := range t.shape {
		n *= d
	}
	return n
}

// size is the tensor's size in bytes in the data section.
func (t tensor) size() uint64 { return 4 * t.elements() }

// padding is the number of bytes that take offset to a multiple of align.
func padding(offset, align uint64) uint64 {
	return (align - offset%align) % align
}

// writeGGUF writes a GGUF v3 file of the metadata and tensors, in the given
// order, and returns the number of bytes written.
func writeGGUF(w io.Writer, kvs []kv, tensors []tensor) (int64, error) {
	le := binary.LittleEndian
	var b []byte
	b = append(b, ggufMagic...)
	b = le.AppendUint32(b, ggufVersion)
	b = le.AppendUint64(b, uint64(len(tensors)))
	b = le.AppendUint64(b, uint64(len(kvs)))
	for _, p := range kvs {
		var err error
		b = appendString(b, p.key)
		if b, err = appendValue(b, p.value); err != nil {
			return 0, fmt.Errorf("gguf: %s: %w", p.key, err)
		}
	}
	var offset uint64
	for _, t := range tensors {
		if t.name == "" || len(t.shape) == 0 || len(t.shape) > 4 {
			return 0, fmt.Errorf("gguf: tensor %q: bad name or shape %v", t.name, t.shape)
		}
		if uint64(len(t.data)) != t.elements() {
			return 0, fmt.Errorf("gguf: tensor %s: %d values for shape %v", t.name, len(t.data), t.shape)
		}
		b = appendString(b, t.name)
		b = le.AppendUint32(b, uint32(len(t.shape)))
		for _, d := range t.shape {
			b = le.AppendUint64(b, d)
		}
		b = le.AppendUint32(b, ggmlF32)
		b = le.AppendUint64(b, offset)
		offset += t.size()
		offset += padding(offset, ggufAlignment)
	}
	b = append(b, make([]byte, padding(uint64(len(b)), ggufAlignment))...)

	bw := bufio.NewWriter(w)
	n := int64(len(b))
	if _, err := bw.Write(b); err != nil {
		return 0, err
	}
	var buf [4]byte
	for _, t := range tensors {
		for _, f := range t.data {
			le.PutUint32(buf[:], math.Float32bits(f))
			if _, err := bw.Write(buf[:]); err != nil {
				return 0, err
			}
		}
		pad := padding(t.size(), ggufAlignment)
		if _, err := bw.Write(make([]byte, pad)); err != nil {
			return 0, err
		}
		n += int64(t.size() + pad)
	}
	return n, bw.Flush()
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue appends the type and the value of one metadata pair.
func appendValue(b []byte, v any) ([]byte, error) {
	le := binary.LittleEndian
	switch v := v.(type) {
	case string:
		b = le.AppendUint32(b, ggufString)
		return appendString(b, v), nil
	case bool:
		b = le.AppendUint32(b, ggufBool)
		if v {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case uint32:
		b = le.AppendUint32(b, ggufUint32)
		return le.AppendUint32(b, v), nil
	case int32:
		b = le.AppendUint32(b, ggufInt32)
		return le.AppendUint32(b, uint32(v)), nil
	case uint64:
		b = le.AppendUint32(b, ggufUint64)
		return le.AppendUint64(b, v), nil
	case float32:
		b = le.AppendUint32(b, ggufFloat32)
		return le.AppendUint32(b, math.Float32bits(v)), nil
	case []string:
		b = appendArrayHeader(b, ggufString, len(v))
		for _, s := range v {
			b = appendString(b, s)
		}
		return b, nil
	case []int32:
		b = appendArrayHeader(b, ggufInt32, len(v))
		for _, x := range v {
			b = le.AppendUint32(b, uint32(x))
		}
		return b, nil
	case []float32:
		b = appendArrayHeader(b, ggufFloat32, len(v))
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
		return b, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

func appendArrayHeader(b []byte, elem uint32, n int) []byte {
	b = binary.LittleEndian.AppendUint32(b, ggufArray)
	b = binary.LittleEndian.AppendUint32(b, elem)
	return binary.LittleEndian.AppendUint64(b, uint64(n))
}
