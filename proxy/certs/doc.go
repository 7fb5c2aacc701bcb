// Package certs obtains and renews the front door's TLS certificates with
// certmagic, keeping them in corral's store, and reports their status.
package certs
