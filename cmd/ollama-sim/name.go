package main

import (
	"cmp"
	"path/filepath"
	"strings"
)

// Defaults that fill the parts a model reference leaves out, as in Ollama's
// types/model package.
const (
	defaultHost      = "registry.ollama.ai"
	defaultNamespace = "library"
	defaultTag       = "latest"
	defaultScheme    = "https"
	missingPart      = "!MISSING!"
)

// name is a model reference split the way Ollama splits it:
// [scheme://]host/namespace/model:tag.
type name struct {
	host      string
	namespace string
	model     string
	tag       string
	scheme    string
}

// parseName parses s and fills missing parts with Ollama's defaults, so
// "llama3.2" becomes registry.ollama.ai/library/llama3.2:latest.
func parseName(s string) name {
	n := parseNameBare(s)
	n.host = cmp.Or(n.host, defaultHost)
	n.namespace = cmp.Or(n.namespace, defaultNamespace)
	n.tag = cmp.Or(n.tag, defaultTag)
	n.scheme = cmp.Or(n.scheme, defaultScheme)
	return n
}

// parseNameBare parses s without filling defaults.
func parseNameBare(s string) name {
	var n name
	var promised bool

	if strings.LastIndex(s, ":") > strings.LastIndex(s, "/") {
		s, n.tag, _ = cutPromised(s, ":")
	}

	s, n.model, promised = cutPromised(s, "/")
	if !promised {
		n.model = s
		return n
	}

	s, n.namespace, promised = cutPromised(s, "/")
	if !promised {
		n.namespace = s
		return n
	}

	scheme, host, ok := strings.Cut(s, "://")
	if ok {
		n.scheme = scheme
	} else {
		host = scheme
	}
	n.host = host
	return n
}

func cutPromised(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return cmp.Or(s[:i], missingPart), cmp.Or(s[i+len(sep):], missingPart), true
}

// nameFromFilepath turns a manifest path relative to the manifests
// directory (host/namespace/model/tag) back into a name.
func nameFromFilepath(rel string) name {
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) != 4 {
		return name{}
	}
	n := name{host: parts[0], namespace: parts[1], model: parts[2], tag: parts[3], scheme: defaultScheme}
	if !n.valid() {
		return name{}
	}
	return n
}

// valid reports whether every part is present and well formed.
func (n name) valid() bool {
	return validPart(partHost, n.host) &&
		validPart(partNamespace, n.namespace) &&
		validPart(partModel, n.model) &&
		validPart(partTag, n.tag)
}

// String is the fully qualified form, host/namespace/model:tag.
func (n name) String() string {
	var b strings.Builder
	if n.host != "" {
		b.WriteString(n.host)
		b.WriteByte('/')
	}
	if n.namespace != "" {
		b.WriteString(n.namespace)
		b.WriteByte('/')
	}
	b.WriteString(n.model)
	if n.tag != "" {
		b.WriteByte(':')
		b.WriteString(n.tag)
	}
	return b.String()
}

// short is Ollama's DisplayShortest: the form /api/tags and /api/ps show.
func (n name) short() string {
	var b strings.Builder
	switch {
	case !strings.EqualFold(n.host, defaultHost):
		b.WriteString(n.host + "/" + n.namespace + "/")
	case !strings.EqualFold(n.namespace, defaultNamespace):
		b.WriteString(n.namespace + "/")
	}
	b.WriteString(n.model + ":" + n.tag)
	return b.String()
}

// filepath is where the manifest lives below the manifests directory.
func (n name) filepath() string {
	return filepath.Join(n.host, n.namespace, n.model, n.tag)
}

func (n name) equalFold(o name) bool {
	return strings.EqualFold(n.host, o.host) &&
		strings.EqualFold(n.namespace, o.namespace) &&
		strings.EqualFold(n.model, o.model) &&
		strings.EqualFold(n.tag, o.tag)
}

type namePart int

const (
	partHost namePart = iota
	partNamespace
	partModel
	partTag
)

func validPart(kind namePart, s string) bool {
	maxLen := 80
	if kind == partHost {
		maxLen = 350
	}
	if len(s) < 1 || len(s) > maxLen {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if i == 0 {
			if !alphanumericOrUnderscore(c) {
				return false
			}
			continue
		}
		switch c {
		case '_', '-':
		case '.':
			if kind == partNamespace {
				return false
			}
		case ':':
			if kind != partHost {
				return false
			}
		default:
			if !alphanumericOrUnderscore(c) {
				return false
			}
		}
	}
	return true
}

func alphanumericOrUnderscore(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}
