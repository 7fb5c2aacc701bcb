package main

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestMinIOBuckets(t *testing.T) {
	_, ts := newTestServer(t, "SIM_ROLE=minio", "MINIO_ROOT_USER=corral")
	const auth = "AWS4-HMAC-SHA256 Credential=corral/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
	steps := []struct {
		method, path string
		auth         bool
		want         int
		wantBody     string
	}{
		{http.MethodHead, "/lobe", false, http.StatusNotFound, ""},
		{http.MethodPut, "/lobe", true, http.StatusOK, ""},
		{http.MethodHead, "/lobe", false, http.StatusOK, ""},
		{http.MethodHead, "/lobe/", false, http.StatusOK, ""},
		{http.MethodPut, "/lobe", true, http.StatusOK, ""}, // again: still 200, recorded once
		{http.MethodPut, "/files.v2/", false, http.StatusOK, ""},
		{http.MethodPut, "/Bad_Name", true, http.StatusBadRequest, "<Code>InvalidBucketName</Code>"},
		{http.MethodPut, "/ab", true, http.StatusBadRequest, "InvalidBucketName"},
		{http.MethodGet, "/lobe", false, http.StatusNotImplemented, "<Code>NotImplemented</Code>"},
		{http.MethodGet, "/lobe/object.txt", false, http.StatusNotFound, "<Code>NoSuchKey</Code>"},
		{http.MethodPut, "/lobe/object.txt", true, http.StatusOK, ""},
		{http.MethodGet, "/lobe/object.txt", false, http.StatusOK, "127.0.0.1:"},
		{http.MethodPut, "/nope/object.txt", true, http.StatusNotFound, "<Code>NoSuchBucket</Code>"},
		{http.MethodDelete, "/lobe/object.txt", true, http.StatusNotImplemented, "<Code>NotImplemented</Code>"},
	}
	for _, st := range steps {
		req, err := http.NewRequest(st.method, ts.URL+st.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.auth {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body strings.Builder
		_, _ = io.Copy(&body, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != st.want || !strings.Contains(body.String(), st.wantBody) {
			t.Errorf("%s %s: %d %s, want %d with %q", st.method, st.path, resp.StatusCode, body.String(), st.want, st.wantBody)
		}
	}

	var got struct {
		Buckets []bucket `json:"buckets"`
	}
	getJSON(t, ts.URL+"/_sim/buckets", &got)
	var names, keys []string
	for _, b := range got.Buckets {
		names = append(names, b.Name)
		keys = append(keys, b.AccessKey)
		if b.Created.IsZero() {
			t.Errorf("bucket %s has no creation time", b.Name)
		}
	}
	if !reflect.DeepEqual(names, []string{"lobe", "files.v2"}) || !reflect.DeepEqual(keys, []string{"corral", ""}) {
		t.Errorf("buckets %v with keys %v", names, keys)
	}

	var env map[string]string
	getJSON(t, ts.URL+"/env", &env)
	if env["MINIO_ROOT_USER"] != "corral" {
		t.Errorf("env %v", env)
	}
}
