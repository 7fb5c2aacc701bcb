// Package redact keeps internal addresses out of what clients read: an
// instance's or the chat UI's status and errors may name where corral
// reaches them, which a stranger must not learn.
package redact

import "regexp"

// addrRE matches what gives away where corral reaches its containers: a
// URL, an IPv4 address or a bracketed IPv6 one with its port, a name
// with a port.
var addrRE = regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^\s"';,)]+|\[[0-9A-Fa-f.%]*:[0-9A-Fa-f:.%]*\](?::\d+)?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\b[A-Za-z0-9._-]*[A-Za-z][A-Za-z0-9._-]*:\d{2,5}\b`)

// Addresses replaces every address in s with "…".
func Addresses(s string) string {
	return addrRE.ReplaceAllString(s, "…")
}
