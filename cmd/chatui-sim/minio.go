package main

import (
	"encoding/xml"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// buckets are the buckets created since start, in memory.
type buckets struct {
	mu      sync.Mutex
	list    []bucket
	objects map[string]object // by bucket/key
}

// bucket is one created bucket; AccessKey is the key ID the request was
// signed with (AWS Signature V4), so a test can check the credentials
// corral wired.
type bucket struct {
	Name      string    `json:"name"`
	AccessKey string    `json:"access_key"`
	Created   time.Time `json:"created"`
}

func newBuckets() *buckets { return &buckets{objects: map[string]object{}} }

// object is one stored object, with the Host its PUT was addressed to:
// a presigned URL's signature covers the host, so a proxy in front of
// the store must pass it on unchanged.
type object struct {
	Data string `json:"data"`
	Host string `json:"host"`
}

// handleObject stores (PUT) and returns (GET) objects in a created
// bucket, as a browser's upload through a presigned URL and its later
// download do.
func (s *server) handleObject(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("bucket") + "/" + r.PathValue("key")
	if !s.buckets.has(r.PathValue("bucket")) {
		writeS3Error(w, http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.", r.PathValue("bucket"))
		return
	}
	switch r.Method {
	case http.MethodPut:
		data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeS3Error(w, http.StatusBadRequest, "IncompleteBody", err.Error(), name)
			return
		}
		s.buckets.mu.Lock()
		s.buckets.objects[name] = object{Data: string(data), Host: r.Host}
		s.buckets.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		s.buckets.mu.Lock()
		o, ok := s.buckets.objects[name]
		s.buckets.mu.Unlock()
		if !ok {
			writeS3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.", name)
			return
		}
		writeJSON(w, http.StatusOK, o)
	default:
		writeS3Error(w, http.StatusNotImplemented, "NotImplemented", "The simulator only puts and gets objects.", name)
	}
}

// add records a bucket unless it exists; it reports whether it was new.
func (b *buckets) add(bk bucket) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if slices.ContainsFunc(b.list, func(x bucket) bool { return x.Name == bk.Name }) {
		return false
	}
	b.list = append(b.list, bk)
	return true
}

func (b *buckets) has(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.ContainsFunc(b.list, func(x bucket) bool { return x.Name == name })
}

func (b *buckets) all() []bucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.list)
}

// bucketName is S3's rule for bucket names, less the IP-address form.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// handleMinIOHealth answers MinIO's liveness and readiness probes: 200,
// no body.
func (s *server) handleMinIOHealth(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// handleBucket answers the bucket operations the simulator knows:
// CreateBucket and HeadBucket.
func (s *server) handleBucket(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut:
		s.handleBucketPut(w, r)
	case http.MethodHead:
		s.handleBucketHead(w, r)
	default:
		writeS3Error(w, http.StatusNotImplemented, "NotImplemented", "The simulator only creates buckets.", r.URL.Path)
	}
}

// handleBucketPut creates a bucket. Creating one that exists also answers
// 200, as a test may recreate MinIO's container and its client.
func (s *server) handleBucketPut(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("bucket")
	if !bucketName.MatchString(name) {
		writeS3Error(w, http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.", name)
		return
	}
	// The body, if any, is a CreateBucketConfiguration; it is not used.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
	s.buckets.add(bucket{Name: name, AccessKey: accessKey(r), Created: time.Now().UTC()})
	w.Header().Set("Location", "/"+name)
	w.WriteHeader(http.StatusOK)
}

// handleBucketHead answers HeadBucket: 200 for a created bucket, else 404.
func (s *server) handleBucketHead(w http.ResponseWriter, r *http.Request) {
	if s.buckets.has(r.PathValue("bucket")) {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

// handleBucketList is the simulator's record: {"buckets": [...]}, in the
// order they were created.
func (s *server) handleBucketList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]bucket{"buckets": s.buckets.all()})
}

// accessKey returns the key ID of an AWS4-HMAC-SHA256 Authorization
// header ("... Credential=KEY/date/region/s3/aws4_request, ..."), or "".
func accessKey(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

type s3Error struct {
	XMLName  xml.Name `xml:"Error"`
	Code     string   `xml:"Code"`
	Message  string   `xml:"Message"`
	Resource string   `xml:"Resource"`
}

func writeS3Error(w http.ResponseWriter, status int, code, msg, resource string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(s3Error{Code: code, Message: msg, Resource: resource})
}
