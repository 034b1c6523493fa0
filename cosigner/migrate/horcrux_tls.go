package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

// IssueHorcruxTLS is the TLS ceremony of a migrated cluster: Horcrux hosts
// hold no certificates, and a cosigner cluster's links need mutual TLS from
// one cluster CA. It creates a one-off CA, issues the certificate and key
// of cosigners 1..n into out/cosigner-<id> (cluster-ca.crt, cluster.crt,
// cluster.key, 0600 under 0700), and discards the CA key before returning,
// as `cosigner shard` does: no certificate can be added to the cluster
// afterwards. out must not exist. Each directory goes to its host only
// (cluster.key is that cosigner's secret), where MigrateHorcrux copies it
// into the new home.
func IssueHorcruxTLS(out string, n int) ([]string, error) {
	if n < 2 || n > threshold.MaxParticipants {
		return nil, fmt.Errorf("%d cosigners: a cluster has 2 to %d", n, threshold.MaxParticipants)
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("%w: %s", share.ErrOutExists, out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ca, err := clustertls.NewCA()
	if err != nil {
		return nil, err
	}
	defer ca.Discard()
	if err := fsutil.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	var dirs []string
	for id := 1; id <= n; id++ {
		cert, err := ca.Issue(id)
		if err != nil {
			return nil, err
		}
		dir := share.Dir(out, id)
		if err := clustertls.WriteFiles(dir, ca.CertPEM(), cert); err != nil {
			return nil, fmt.Errorf("cosigner %d: %w", id, err)
		}
		dirs = append(dirs, dir)
	}
	return dirs, fsutil.SyncDir(out)
}
