// Package certid is how a cluster certificate names its cosigner: the id
// appears twice, as Subject CN "cosigner-<id>" and as the one URI SAN
// "cosigner://<id>", and both must be present and agree. clustertls issues
// and verifies such certificates; the raft layer reads the id of each
// connection's peer with the same rule.
package certid

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxID is the largest cosigner id a certificate may carry. Ids start at
// 1, as FROST identifiers do.
const MaxID = 65535

const (
	cnPrefix  = "cosigner-"
	uriScheme = "cosigner"
)

// CommonName is the Subject CN of cosigner id's certificate.
func CommonName(id int) string { return cnPrefix + strconv.Itoa(id) }

// URI is the URI SAN of cosigner id's certificate.
func URI(id int) *url.URL { return &url.URL{Scheme: uriScheme, Host: strconv.Itoa(id)} }

// Of returns the cosigner id cert carries, or an error naming what is
// malformed.
func Of(cert *x509.Certificate) (int, error) {
	cn := cert.Subject.CommonName
	if len(cert.URIs) != 1 {
		return 0, fmt.Errorf("certificate %q has %d URI SANs, want exactly one %s://<id>", cn, len(cert.URIs), uriScheme)
	}
	u := cert.URIs[0]
	if u.Scheme != uriScheme || u.Opaque != "" || u.Path != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return 0, fmt.Errorf("certificate %q has URI SAN %q, want %s://<id>", cn, u.String(), uriScheme)
	}
	id, err := Parse(u.Host)
	if err != nil {
		return 0, fmt.Errorf("certificate %q has URI SAN %q: %w", cn, u.String(), err)
	}
	if rest, ok := strings.CutPrefix(cn, cnPrefix); !ok || rest != strconv.Itoa(id) {
		return 0, fmt.Errorf("certificate common name %q does not match its URI SAN %q", cn, u.String())
	}
	return id, nil
}

// Parse reads a cosigner id written in decimal, 1 to MaxID, with no sign
// or leading zeros.
func Parse(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || strconv.Itoa(id) != s || id < 1 || id > MaxID {
		return 0, fmt.Errorf("malformed cosigner id %q, want a decimal 1..%d", s, MaxID)
	}
	return id, nil
}
