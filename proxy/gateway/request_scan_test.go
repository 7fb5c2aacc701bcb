package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decodeModelRequest is the reference: what encoding/json makes of body.
func decodeModelRequest(body []byte) (modelRequest, error) {
	var m modelRequest
	err := json.Unmarshal(body, &m)
	return m, err
}

const plainCases = 12

var scanCases = []string{
	`{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","stream":false,"max_tokens":12,"max_completion_tokens":null,"user":"ann"}`,
	` { "model" : "m" , "options" : { "temperature" : 0.2 , "num_predict" : -1 } } `,
	`{"model":"m","stream_options":{"include_usage":true},"stream_options":{}}`,
	`{"model":"m","stream_options":null}`,
	`{"name":"old-client","stream":null}`,
	`{"model":"a","model":"b"}`,
	`{"model":null}`,
	`{"images":["aGVsbG8=","d29ybGQ="],"model":"llava","prompt":"what is \"this\"? {[}]"}`,
	`{"nested":{"model":"not me","a":[1,{"b":[true,false,null]}]},"model":"me"}`,
	`{}`,
	`{"model":"m","input":[{"role":"user","content":"hi"}],"max_output_tokens":64,"max_tokens":null}`,
	// Left to encoding/json (plainCases counts those above):
	`{"Model":"case","stream":true}`,
	`{"MODEL":"m"}`,
	`{"model":"esc\u0061ped"}`,
	`{"mod\u0065l":"m"}`,
	`{"model":5}`,
	`{"model":"m","stream":"yes"}`,
	`{"model":"m","max_tokens":1.5}`,
	`{"model":"m","max_tokens":1e3}`,
	`{"model":"m","max_tokens":99999999999999999999}`,
	`{"model":"m","options":[]}`,
	`{"model":"m","options":{"Num_Predict":3}}`,
	`{"model":"m","stream_options":{"include_usage":1}}`,
	`[{"model":"m"}]`,
	`"model"`,
	`null`,
	// Not JSON: the scan must refuse every one, as json.Valid does.
	`{"model":"m",}`,
	`{"model":"m"} x`,
	`{"model":"m"`,
	`{"model":"m","a":01}`,
	`{"model":"m","a":"` + "\x01" + `"}`,
	`{"model":"m","a":"\q"}`,
	`{"model":"m","a":"\u12"}`,
	`{"model":"m","a":nul}`,
	`{"model":"m","stream":tru}`,
	`{"model":"m","a":[1,]}`,
	`{"model":"m","a":[1 2]}`,
	`{"model":"m","a":-}`,
	`{"model":"m","a":1.}`,
	`{"model":"m","a":1e}`,
	`{"model":"m","a":.5}`,
	`{"model":"m","a":+1}`,
	`{"model" "m"}`,
	`{"model":"m","max_tokens":-}`,
	`{"model":"m","max_tokens":012}`,
	`{"model":"m","a":{"b":}}`,
	`{"model":"m","a":[}`,
}

// TestScanModelRequest: where the scan answers, the body is JSON and
// the scan answers what encoding/json does; where it declines, decoding
// decides.
func TestScanModelRequest(t *testing.T) {
	for i, body := range scanCases {
		got, ok := scanModelRequest([]byte(body))
		if plain := i < plainCases; ok != plain {
			t.Errorf("%s: scanned %v, want %v", body, ok, plain)
		}
		if !ok {
			continue
		}
		want, err := decodeModelRequest([]byte(body))
		if err != nil {
			t.Errorf("%s: scanned, but encoding/json says %v", body, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n scan   %+v\n decode %+v", body, got, want)
		}
	}
}

func FuzzScanModelRequest(f *testing.F) {
	for _, c := range scanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanModelRequest(body)
		if !ok {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("%q: scanned, but it is not JSON", body)
		}
		want, err := decodeModelRequest(body)
		if err != nil {
			t.Fatalf("%q: scanned, but encoding/json says %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n scan   %+v\n decode %+v", body, got, want)
		}
	})
}
