package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The simulator's model blobs are real GGUF files holding only metadata (no
// tensors): the catalogue writes them on pull, and /api/create reads the
// ones a client uploads. /api/show and capability detection read them back
// the way Ollama reads a real model file.

const ggufMagic = "GGUF"

// GGUF metadata value types.
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

// errNotGGUF is Ollama's message for an upload that is not a GGUF file.
var errNotGGUF = errors.New("supplied file was not in GGUF format")

// ggufKV is one metadata pair; value is a string, bool, uint32, uint64,
// float32 or []string.
type ggufKV struct {
	key   string
	value any
}

// encodeGGUF writes a version 3 GGUF file with the given metadata and no
// tensors.
func encodeGGUF(kvs []ggufKV) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	putString := func(s string) {
		b.Write(le.AppendUint64(nil, uint64(len(s))))
		b.WriteString(s)
	}
	b.WriteString(ggufMagic)
	b.Write(le.AppendUint32(nil, 3))
	b.Write(le.AppendUint64(nil, 0)) // tensors
	b.Write(le.AppendUint64(nil, uint64(len(kvs))))
	for _, kv := range kvs {
		putString(kv.key)
		switch v := kv.value.(type) {
		case string:
			b.Write(le.AppendUint32(nil, ggufString))
			putString(v)
		case bool:
			b.Write(le.AppendUint32(nil, ggufBool))
			if v {
				b.WriteByte(1)
			} else {
				b.WriteByte(0)
			}
		case uint32:
			b.Write(le.AppendUint32(nil, ggufUint32))
			b.Write(le.AppendUint32(nil, v))
		case uint64:
			b.Write(le.AppendUint32(nil, ggufUint64))
			b.Write(le.AppendUint64(nil, v))
		case float32:
			b.Write(le.AppendUint32(nil, ggufFloat32))
			b.Write(le.AppendUint32(nil, math.Float32bits(v)))
		case []string:
			b.Write(le.AppendUint32(nil, ggufArray))
			b.Write(le.AppendUint32(nil, ggufString))
			b.Write(le.AppendUint64(nil, uint64(len(v))))
			for _, s := range v {
				putString(s)
			}
		default:
			panic(fmt.Sprintf("gguf: unsupported value type %T", v))
		}
	}
	return b.Bytes()
}

// Limits that keep a hostile or corrupt upload from exhausting memory.
const (
	ggufMaxString = 1 << 24
	ggufMaxArray  = 1 << 22
	ggufMaxKV     = 1 << 16
	ggufKeepArray = 1024
)

// decodeGGUF reads the metadata of a GGUF file. Arrays come back as []any.
func decodeGGUF(r io.Reader) (map[string]any, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, 4)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != ggufMagic {
		return nil, errNotGGUF
	}
	d := ggufDecoder{r: br}
	version := d.u32()
	if d.err == nil && version != 2 && version != 3 {
		return nil, fmt.Errorf("gguf: unsupported version %d", version)
	}
	d.u64() // tensor count: the simulator never reads tensors
	count := d.u64()
	if d.err != nil {
		return nil, d.err
	}
	if count > ggufMaxKV {
		return nil, fmt.Errorf("gguf: too many metadata entries (%d)", count)
	}
	kv := make(map[string]any, count)
	for range count {
		key := d.str()
		typ := d.u32()
		v := d.value(typ)
		if d.err != nil {
			return nil, d.err
		}
		kv[key] = v
	}
	return kv, nil
}

type ggufDecoder struct {
	r   io.Reader
	err error
	buf [8]byte
}

func (d *ggufDecoder) read(n int) []byte {
	if d.err != nil {
		return d.buf[:n]
	}
	if _, err := io.ReadFull(d.r, d.buf[:n]); err != nil {
		d.err = fmt.Errorf("gguf: truncated metadata: %w", err)
	}
	return d.buf[:n]
}

func (d *ggufDecoder) u32() uint32 { return binary.LittleEndian.Uint32(d.read(4)) }
func (d *ggufDecoder) u64() uint64 { return binary.LittleEndian.Uint64(d.read(8)) }

func (d *ggufDecoder) str() string {
	n := d.u64()
	if d.err != nil {
		return ""
	}
	if n > ggufMaxString {
		d.err = fmt.Errorf("gguf: string of %d bytes is too long", n)
		return ""
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = fmt.Errorf("gguf: truncated metadata: %w", err)
	}
	return string(b)
}

func (d *ggufDecoder) value(typ uint32) any {
	switch typ {
	case ggufUint8:
		return d.read(1)[0]
	case ggufInt8:
		return int8(d.read(1)[0])
	case ggufUint16:
		return binary.LittleEndian.Uint16(d.read(2))
	case ggufInt16:
		return int16(binary.LittleEndian.Uint16(d.read(2)))
	case ggufUint32:
		return d.u32()
	case ggufInt32:
		return int32(d.u32())
	case ggufFloat32:
		return math.Float32frombits(d.u32())
	case ggufBool:
		return d.read(1)[0] != 0
	case ggufString:
		return d.str()
	case ggufUint64:
		return d.u64()
	case ggufInt64:
		return int64(d.u64())
	case ggufFloat64:
		return math.Float64frombits(d.u64())
	case ggufArray:
		elem := d.u32()
		n := d.u64()
		if d.err != nil {
			return nil
		}
		if n > ggufMaxArray || elem == ggufArray {
			d.err = fmt.Errorf("gguf: unsupported array (%d elements of type %d)", n, elem)
			return nil
		}
		// Long arrays (a tokenizer's vocabulary) are read past, not kept:
		// /api/show hides arrays of more than five entries anyway.
		keep := n <= ggufKeepArray
		out := make([]any, 0, min(n, ggufKeepArray))
		for range n {
			v := d.value(elem)
			if d.err != nil {
				return nil
			}
			if keep {
				out = append(out, v)
			}
		}
		return out
	default:
		d.err = fmt.Errorf("gguf: unknown metadata type %d", typ)
		return nil
	}
}

// ggufUint reads an unsigned metadata value of any width.
func ggufUint(kv map[string]any, key string) (uint64, bool) {
	switch v := kv[key].(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int32:
		return uint64(max(v, 0)), true
	case int64:
		return uint64(max(v, 0)), true
	}
	return 0, false
}

// fileTypeName is ggml's name for a general.file_type value.
func fileTypeName(t uint64) string {
	switch t {
	case 0:
		return "F32"
	case 1:
		return "F16"
	case 2:
		return "Q4_0"
	case 3:
		return "Q4_1"
	case 4:
		return "MXFP4"
	case 7:
		return "Q8_0"
	case 8:
		return "Q5_0"
	case 9:
		return "Q5_1"
	case 10:
		return "Q2_K"
	case 11:
		return "Q3_K_S"
	case 12:
		return "Q3_K_M"
	case 13:
		return "Q3_K_L"
	case 14:
		return "Q4_K_S"
	case 15:
		return "Q4_K_M"
	case 16:
		return "Q5_K_S"
	case 17:
		return "Q5_K_M"
	case 18:
		return "Q6_K"
	case 21:
		return "Q2_K_S"
	case 32:
		return "BF16"
	}
	return "unknown"
}

// humanNumber is Ollama's format.HumanNumber, used for parameter sizes.
func humanNumber(b uint64) string {
	const (
		thousand = 1000
		million  = thousand * 1000
		billion  = million * 1000
	)
	switch {
	case b >= billion:
		n := float64(b) / billion
		if n == math.Floor(n) {
			return fmt.Sprintf("%.0fB", n)
		}
		return fmt.Sprintf("%.1fB", n)
	case b >= million:
		n := float64(b) / million
		if n == math.Floor(n) {
			return fmt.Sprintf("%.0fM", n)
		}
		return fmt.Sprintf("%.2fM", n)
	case b >= thousand:
		return fmt.Sprintf("%.0fK", float64(b)/thousand)
	}
	return fmt.Sprint(b)
}
