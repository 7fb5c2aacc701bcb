// Package assets holds what the admin pages are made of: html/template
// files, one stylesheet and one plain script, embedded so the binary
// serves them with nothing fetched at run time and no build step.
//
// Layout: templates/layout (the frame every page shares),
// templates/pages (one file per page, each defining "title" and
// "content"), templates/partials (fragments a page and a handler both
// render), static (served as is).
package assets

import "embed"

// FS is every template and static file.
//
//go:embed templates static
var FS embed.FS
