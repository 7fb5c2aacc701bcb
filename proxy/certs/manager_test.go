package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for names and its key as PEM files.
func selfSigned(t *testing.T, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// A certificate the owner brings is served for its names, with its
// dates in the status, and one that does not cover a domain is refused
// at start with what to do.
func TestCertificateFromFiles(t *testing.T) {
	certFile, keyFile := selfSigned(t, "chat.example.com")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := New(Config{Domains: []string{"chat.example.com"}, CertFile: certFile, KeyFile: keyFile, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if st.State != StateValid || st.Source != SourceFiles || len(st.Certificates) != 1 || !st.Certificates[0].NextRenewal.IsZero() {
		t.Fatalf("status %+v", st)
	}
	cert, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "chat.example.com"})
	if err != nil || cert == nil {
		t.Fatalf("no certificate served: %v", err)
	}

	other, err := New(Config{Domains: []string{"chat.example.com", "api.example.com"}, CertFile: certFile, KeyFile: keyFile, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	err = other.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not cover api.example.com") {
		t.Fatalf("err = %v, want one naming the uncovered domain", err)
	}
}
