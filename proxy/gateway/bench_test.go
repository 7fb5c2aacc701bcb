package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// sseChat answers /v1/chat/completions with n content chunks, the usage
// chunk and [DONE], each flushed, as Ollama does.
func sseChat(n int) http.HandlerFunc {
	var chunks [][]byte
	for i := range n {
		chunks = append(chunks, fmt.Appendf(nil, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m:latest","choices":[{"index":0,"delta":{"role":"assistant","content":"tok%d "},"finish_reason":null}]}`+"\n\n", i))
	}
	tail := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m:latest","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":` + fmt.Sprint(n) + `,"total_tokens":` + fmt.Sprint(n+3) + "}}\n\ndata: [DONE]\n\n")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for _, c := range chunks {
			w.Write(c)
			f.Flush()
		}
		w.Write(tail)
	}
}

// BenchmarkStream is the gateway's cost per streamed request against the
// same upstream direct, in one process: compare the two sub-benchmarks'
// ns/op and allocs/op (the difference is the gateway's, behind net/http
// as corral serve runs it). scripts/bench
// measures it across processes, against nginx too.
func BenchmarkStream(b *testing.B) {
	up := httptest.NewServer(sseChat(16))
	defer up.Close()
	u := upstreamAt(b, "i0", up.URL, "m:latest")
	u.Parallel = 64
	st := &staticUpstreams{}
	st.s.Store(&Snapshot{Version: 1, Upstreams: []Upstream{u}})
	g := New(Config{Logger: quiet()}, st, keyAuth{})
	defer g.Close()
	gw := httptest.NewServer(g)
	defer gw.Close()

	body := []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"gateway", gw.URL}} {
		b.Run(target.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", target.url+"/v1/chat/completions", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer good")
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					sc := bufio.NewScanner(resp.Body)
					done := false
					for sc.Scan() {
						if sc.Text() == "data: [DONE]" {
							done = true
						}
					}
					resp.Body.Close()
					if !done {
						b.Error("stream without [DONE]")
						return
					}
				}
			})
		})
	}
}
