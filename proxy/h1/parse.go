package h1

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parse reads the request whose header block is buf[r:end] into req. ok
// is false for anything h1 leaves to net/http (see the package doc). The
// strings of the request share one allocation: the block's. req is the
// caller's (on its stack): the request the handler gets is its copy made
// by WithContext, the one allocation of a Request.
func (c *conn) parse(end int, req *http.Request) (cl int64, ok bool) {
	block := string(c.buf[c.r : end-2]) // every line with its CRLF
	i := strings.Index(block, "\r\n")
	line, rest := block[:i], block[i+2:]
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !validToken(method) || proto != "HTTP/1.1" || !validTarget(target) {
		return 0, false
	}
	u, err := parseTarget(target)
	if err != nil {
		return 0, false
	}
	h, ok := ParseFields(rest)
	if !ok {
		return 0, false // folded, no name, a bad value: net/http's 400
	}
	hosts, lengths := h["Host"], h["Content-Length"]
	if len(hosts) != 1 || !validHost(hosts[0]) || len(lengths) > 1 {
		return 0, false
	}
	host := hosts[0]
	delete(h, "Host") // r.Host, as net/http has it
	if len(lengths) == 1 {
		if cl, ok = parseLength(lengths[0]); !ok {
			return 0, false
		}
	}
	for _, k := range []string{"Transfer-Encoding", "Expect", "Upgrade"} {
		if _, ok := h[k]; ok {
			return 0, false
		}
	}
	closing := false
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			switch tok = strings.Trim(tok, " \t"); {
			case strings.EqualFold(tok, "close"):
				closing = true
			case strings.EqualFold(tok, "keep-alive"), tok == "":
			default:
				return 0, false
			}
		}
	}
	*req = http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: cl, Host: host, RemoteAddr: c.remote, RequestURI: target, Close: closing,
	}
	return cl, true
}

// ParseFields reads header lines, each ending in CRLF, into a header
// whose strings are slices of lines: a head read into one string costs
// one allocation for all its names and values. ok is false for anything
// Go's textproto would judge otherwise or refuse: a folded line, a name
// that is not a token, a value with control characters. The gateway's
// client reads its upstreams' heads with it too.
func ParseFields(lines string) (h http.Header, ok bool) {
	n := strings.Count(lines, "\r\n")
	h = make(http.Header, n)
	vals := make([]string, n) // one value per key in the usual case
	for lines != "" {
		var name, value string
		if name, value, lines, ok = NextField(lines); !ok {
			return nil, false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
		} else {
			h[key], vals = vals[:1:1], vals[1:]
			h[key][0] = value
		}
	}
	return h, true
}

// NextField takes the first of header lines, each ending in CRLF: its
// name as sent, its value trimmed, and the lines after it. ok is false
// for what ParseFields refuses, and for a line without its CRLF.
func NextField(lines string) (name, value, rest string, ok bool) {
	i := strings.Index(lines, "\r\n")
	if i < 0 {
		return "", "", "", false
	}
	name, value, found := strings.Cut(lines[:i], ":")
	if !found || !validToken(name) {
		return "", "", "", false
	}
	value = strings.Trim(value, " \t")
	if !validValue(value) {
		return "", "", "", false
	}
	return name, value, lines[i+2:], true
}

func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// validToken reports whether s is an RFC 9110 token (a method, a field
// name).
func validToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// validValue rejects control characters but tab, as net/http does.
func validValue[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// parseTarget is url.ParseRequestURI for an origin-form target. The
// usual one, a plain path and maybe a query, is taken apart here: the
// URL it makes is the one net/url would, and net/url's parser, the
// largest piece of code on a request's way in, is not run for it (every
// request runs its code cold, as the CPU idles between them).
func parseTarget(target string) (*url.URL, error) {
	path, query, hasQuery := strings.Cut(target, "?")
	if !plainPath(path) || strings.HasPrefix(path, "//") || (hasQuery && (query == "" || strings.ContainsRune(query, '#'))) {
		return url.ParseRequestURI(target)
	}
	return &url.URL{Path: path, RawQuery: query}, nil
}

// plainPath reports whether p is a path of characters net/url leaves as
// they are: no escapes to decode, nothing it would escape.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch b := p[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("-._~/$&+,;=:@", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// validTarget accepts an origin-form target: a path, maybe a query.
func validTarget(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// validHost is a strict subset of what net/http accepts: names,
// addresses, ports, IPv6 literals; anything else is its to judge.
func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("-._~:[]%", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated header value lists tok,
// case-insensitively (Connection: close, Transfer-Encoding: chunked).
func HasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(t, " \t"), tok) {
				return true
			}
		}
	}
	return false
}
