package ui

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// importNamePattern is the rule for the name of an imported model,
// written so Go's regexp and JavaScript's RegExp read it alike: the page
// checks a name with it before a byte is sent, the API again on arrival,
// rather than after a whole file has gone up to an instance that would
// refuse the name. It follows Ollama's: [[HOST/]NAMESPACE/]MODEL[:TAG].
const importNamePattern = `^(?:(?:[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,349}/)?[A-Za-z0-9_][A-Za-z0-9_\-]{0,79}/)?[A-Za-z0-9_][A-Za-z0-9_.\-]{0,79}(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,79})?$`

// importNameHint says the rule in words, on the page and in errors.
const importNameHint = "use NAME or NAMESPACE/NAME with an optional :TAG, made of letters, digits, '_', '-' and '.', such as tiny:latest"

var importNameRE = regexp.MustCompile(importNamePattern)

// checkImportName words a failure as the page's script does too.
func checkImportName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return errors.New("name is required: the model's name, such as tiny:latest")
	}
	if !importNameRE.MatchString(name) {
		return fmt.Errorf("model name %s is not valid: %s", strconv.Quote(name), importNameHint)
	}
	return nil
}
