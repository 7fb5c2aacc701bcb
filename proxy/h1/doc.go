// Package h1 is the front door's HTTP/1.1 server: it serves the requests
// an LLM client sends (a request line, plain headers, a body with a
// Content-Length) with a fraction of net/http's work per request, and
// hands every connection with anything else to a net/http Server. Its
// header-line parsing (NextField, ParseFields, HasToken) also reads the
// upstreams' answers in the gateway's HTTP/1.1 client, and its responses
// take an upstream's fields as lines (WriteHeaderLines), so a stream's
// header passes through without a map on either side. A response can
// also end before its handler returns (EndBody), so a proxy's client has
// the whole answer while the proxy still logs and counts it.
//
// Why: a streamed chat request crosses the gateway twice before the
// first token reaches the client, and each crossing starts from a cold
// CPU while the model thinks. Measured cold, net/http spent about 40 µs
// of that path parsing the request and writing the response headers:
// textproto's general reader, a header map built key by key, a response
// that is copied through two buffers and written in pieces.
//
// What h1 does itself: the request line and headers are parsed in place
// from one read buffer, and their strings share a single allocation; the
// response's headers are serialized once, at WriteHeader, and leave with
// the first body bytes in one write; a body that is complete when the
// handler returns gets a Content-Length, anything flushed earlier is
// chunked. A client that leaves cancels the request's context, as with
// net/http, through a read that waits on the connection once the body has
// been read.
//
// What it hands over, as the bytes it read and the connection: anything
// but HTTP/1.1, a target that is not a path, Transfer-Encoding, Expect,
// Upgrade, a Connection header with other tokens than close and
// keep-alive, a missing or repeated Host, a repeated or malformed
// Content-Length, folded or malformed header lines, lines ending in a
// bare LF, and headers larger than net/http's limit. net/http then answers exactly as it would have
// (a 400, a 431, a 100 Continue, a protocol switch), and the connection
// stays with it. So h1 never has to get a rare case right: it only has
// to recognise it.
package h1
