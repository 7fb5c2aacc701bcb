package h1

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parse reads the request whose header block is buf[r:end]. ok is false
// for anything h1 leaves to net/http (see the package doc). The strings
// of the request share one allocation: the block's.
func (c *conn) parse(end int) (req *http.Request, cl int64, ok bool) {
	block := string(c.buf[c.r : end-2]) // every line with its CRLF
	i := strings.Index(block, "\r\n")
	line, rest := block[:i], block[i+2:]
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !validToken(method) || proto != "HTTP/1.1" || !validTarget(target) {
		return nil, 0, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, 0, false
	}
	n := strings.Count(rest, "\r\n")
	h := make(http.Header, n)
	vals := make([]string, n) // one value per key in the usual case
	var host string
	hosts, lengths, closing := 0, 0, false
	for rest != "" {
		i := strings.Index(rest, "\r\n")
		line, rest = rest[:i], rest[i+2:]
		name, value, found := strings.Cut(line, ":")
		if !found || !validToken(name) {
			return nil, 0, false // folded, or no name: net/http's 400
		}
		value = strings.Trim(value, " \t")
		if !validValue(value) {
			return nil, 0, false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue // r.Host, as net/http has it
		case "Content-Length":
			lengths++
			if cl, ok = parseLength(value); !ok {
				return nil, 0, false
			}
		case "Transfer-Encoding", "Expect", "Upgrade":
			return nil, 0, false
		case "Connection":
			for tok := range strings.SplitSeq(value, ",") {
				switch tok = strings.Trim(tok, " \t"); {
				case strings.EqualFold(tok, "close"):
					closing = true
				case strings.EqualFold(tok, "keep-alive"), tok == "":
				default:
					return nil, 0, false
				}
			}
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, value)
		} else {
			h[key], vals = vals[:1:1], vals[1:]
			h[key][0] = value
		}
	}
	if hosts != 1 || lengths > 1 || !validHost(host) {
		return nil, 0, false
	}
	return &http.Request{
		Method: method, URL: u, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: cl, Host: host, RemoteAddr: c.remote, RequestURI: target, Close: closing,
	}, cl, true
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
func validToken(s string) bool {
	if s == "" {
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
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
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

func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.Trim(t, " \t"), tok) {
				return true
			}
		}
	}
	return false
}
