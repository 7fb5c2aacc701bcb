// Command mkgguf writes a tiny llama-architecture model as a GGUF file that
// the real Ollama server imports offline and runs on CPU, for end-to-end
// tests without a registry or a download:
//
//	mkgguf -o tiny.gguf [-seed 1] [-layers 2] [-dim 64] [-ctx 4096]
//
// -o - writes to stdout. The defaults give 2 layers of 64 dimensions (4
// heads of 16, 2 KV heads, FFN 128), random F32 weights from the seed, a
// byte-level BPE vocabulary of the 256 bytes plus <s> and </s>; 434 KB.
// The same flags give the same bytes. The model only ever emits printable
// ASCII and never its end token, so a generation runs to num_predict (and
// without one, to Ollama's cap of 10 × num_ctx); see model.go.
//
// Import it with Ollama's blob and create endpoints:
//
//	POST /api/blobs/sha256:<hex digest of the file>   (the file as the body)
//	POST /api/create {"model":"tiny","files":{"tiny.gguf":"sha256:<digest>"},
//	                  "template":"{{ .Prompt }}","stream":false,
//	                  "parameters":{"num_ctx":2048,"num_predict":64,"num_thread":1}}
//
// num_thread 1 matters on a small or busy machine: ggml's threads spin
// waiting for each other, and this model is too small to share out; one
// thread generates 20 tokens in about 5 ms, two threads on a busy 2-core
// machine took seconds.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mkgguf:", err)
		os.Exit(1)
	}
}

// run parses the flags and writes the model.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkgguf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := defaultSpec
	out := fs.String("o", "", "output file, or - for stdout (required)")
	fs.Uint64Var(&s.Seed, "seed", s.Seed, "seed of the random weights")
	fs.IntVar(&s.Layers, "layers", s.Layers, "transformer blocks")
	fs.IntVar(&s.Dim, "dim", s.Dim, fmt.Sprintf("embedding length, a multiple of %d (heads of %d)", headDim, headDim))
	fs.IntVar(&s.Context, "ctx", s.Context, "trained context length")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mkgguf -o FILE [-seed N] [-layers N] [-dim N] [-ctx N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return fmt.Errorf("-o is required")
	}
	kvs, ts, err := tinyLlama(s)
	if err != nil {
		return err
	}
	if *out == "-" {
		_, err := writeGGUF(stdout, kvs, ts)
		return err
	}
	return writeFile(*out, kvs, ts)
}

// writeFile writes the model to a temporary file beside path and renames
// it, so path never holds half a model.
func writeFile(path string, kvs []kv, ts []tensor) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := writeGGUF(f, kvs, ts); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
