package migrate

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/privval"
)

// TMKMSOptions are the inputs of a TMKMS migration besides tmkms.toml.
type TMKMSOptions struct {
	// PathMap rewrites the paths of the files tmkms.toml names (keys, state
	// files, identity, password file) before they are read: a tmkms.toml
	// written for a container names paths inside it. The first mapping
	// whose From is the path or a parent directory of it applies.
	PathMap []PathMapping
	// Heights gives, per chain id, the lowest height cosigner may sign: for
	// a chain whose TMKMS state file is missing, or to start above it.
	Heights map[string]int64
	// MetricsListen is the new home's [metrics] listen address.
	MetricsListen string
}

// PathMapping replaces the directory From with To.
type PathMapping struct{ From, To string }

// ParsePathMapping parses FROM=TO (two absolute or relative paths).
func ParsePathMapping(s string) (PathMapping, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return PathMapping{}, fmt.Errorf("path mapping %q: want FROM=TO, like /tmkms=/srv/sekin/tmkms", s)
	}
	return PathMapping{From: filepath.Clean(from), To: filepath.Clean(to)}, nil
}

func (m PathMapping) apply(p string) (string, bool) {
	c := filepath.Clean(p)
	if c == m.From {
		return m.To, true
	}
	if rest, ok := strings.CutPrefix(c, m.From+string(filepath.Separator)); ok {
		return filepath.Join(m.To, rest), true
	}
	return p, false
}

// TMKMSMigration is what a tmkms.toml becomes: every file it names read and
// checked, nothing written yet. Write creates the cosigner home.
type TMKMSMigration struct {
	// Source is the tmkms.toml read.
	Source string
	// Config is the new home's cosigner.toml.
	Config *config.Config
	// Chains are the migrated chains, in tmkms.toml's order.
	Chains []TMKMSChain
	// IdentityFrom is the TMKMS secret_key imported as the SecretConnection
	// identity; empty when a fresh identity is made (Notes say why).
	IdentityFrom string
	// IdentityNodeID is the identity's node id.
	IdentityNodeID string
	// Notes say what was dropped, changed or ignored, one sentence each.
	Notes []string

	identity    ed25519.PrivateKey
	hsmPassword string
}

// TMKMSChain is one migrated chain.
type TMKMSChain struct {
	ID string
	// PubKey is the validator key (for a YubiHSM2 key object, unknown
	// until the device is asked: nil).
	PubKey ed25519.PublicKey
	// HSMKeyID is the YubiHSM2 key object, 0 for a softsign key.
	HSMKeyID int
	// KeyFrom is the key file or YubiHSM2 provider the key came from.
	KeyFrom string
	// Mark is the imported sign state: cosigner signs nothing at or below
	// it.
	Mark signstate.Mark
	// StateFrom is the state file read, or "--height" when the mark came
	// from TMKMSOptions.Heights.
	StateFrom string
	// StateKind is "TMKMS", "CometBFT" (a file TMKMS never wrote to) or
	// "height".
	StateKind string
	// Nodes are the node addresses, node IDs dropped.
	Nodes []string

	key *keys.ChainKey
}

// keyOwner is where a chain's consensus key lives in tmkms.toml.
type keyOwner struct {
	desc     string
	softsign *tmkmsSoftsign
	hsmKey   int
}

// ReadTMKMS reads tmkms.toml at path and every file it names, and checks
// that they make a working cosigner home. Relative paths in tmkms.toml are
// taken relative to its directory (TMKMS takes them relative to its working
// directory, usually the same). It writes nothing; each error names the
// setting or file and says what to do.
func ReadTMKMS(path string, opts TMKMSOptions) (*TMKMSMigration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tmkms.toml: %w", err)
	}
	tc, err := parseTMKMSConfig(data)
	if err != nil {
		return nil, fmt.Errorf("tmkms.toml %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	r := &tmkmsReader{cfg: tc, dir: filepath.Dir(abs), opts: opts,
		m: &TMKMSMigration{Source: path, Config: config.DefaultConfig()}}
	if err := r.read(); err != nil {
		return nil, fmt.Errorf("tmkms.toml %s: %w", path, err)
	}
	return r.m, nil
}

type tmkmsReader struct {
	cfg  *tmkmsConfig
	dir  string
	opts TMKMSOptions
	m    *TMKMSMigration
}

func (r *tmkmsReader) note(format string, args ...any) {
	r.m.Notes = append(r.m.Notes, fmt.Sprintf(format, args...))
}

// resolve maps and anchors a path tmkms.toml names.
func (r *tmkmsReader) resolve(p string) string {
	for _, pm := range r.opts.PathMap {
		if q, ok := pm.apply(p); ok {
			p = q
			break
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.dir, p)
	}
	return p
}

func (r *tmkmsReader) read() error {
	c := r.cfg
	if len(c.Providers.Ledgertm) > 0 {
		return errors.New("[[providers.ledgertm]]: cosigner cannot sign with a Ledger: move the validator to a " +
			"softsign key or a YubiHSM2 under TMKMS first, or migrate from the key's priv_validator_key.json with 'cosigner init' and 'cosigner keys import'")
	}
	if len(c.Providers.Fortanixdsm) > 0 {
		return errors.New("[[providers.fortanixdsm]]: cosigner cannot sign with Fortanix DSM keys: " +
			"migrate from the key's priv_validator_key.json with 'cosigner init' and 'cosigner keys import'")
	}
	if len(c.TxSigner) > 0 {
		r.note("[[tx_signer]] is not migrated: cosigner signs consensus messages only")
	}

	chains := map[string]*tmkmsChain{}
	prefixes := map[string]string{}
	for i := range c.Chain {
		ch := &c.Chain[i]
		if err := config.ValidateChainID(ch.ID); err != nil {
			return fmt.Errorf("[[chain]] id: %w", err)
		}
		if chains[ch.ID] != nil {
			return fmt.Errorf("[[chain]] %q appears twice: TMKMS allows one per chain id", ch.ID)
		}
		chains[ch.ID] = ch
		p, err := ch.KeyFormat.bech32Prefix(ch.ID)
		if err != nil {
			return err
		}
		prefixes[ch.ID] = p
		if ch.SignExtensions != nil {
			r.note("[[chain]] %q sign_extensions = %t is not carried over: cosigner signs the vote extension of every "+
				"non-nil precommit when the node asks for one, on every CometBFT version, with no setting", ch.ID, *ch.SignExtensions)
		}
		if ch.StateHook != nil {
			r.note("[[chain]] %q state_hook is not carried over: cosigner starts from the imported state file "+
				"(or --height); it runs no command at start", ch.ID)
		}
	}

	owners, err := r.keyOwners(chains)
	if err != nil {
		return err
	}

	nodes := map[string][]string{}
	var identities []string
	for i, v := range c.Validator {
		if chains[v.ChainID] == nil {
			return fmt.Errorf("[[validator]] %d (addr %q) has chain_id %q, which has no [[chain]]: TMKMS cannot sign "+
				"for it either; add the [[chain]] (id, key_format, state_file) or remove the [[validator]]", i+1, v.Addr, v.ChainID)
		}
		addr, dropped, err := tmkmsNodeAddress(v.Addr)
		if err != nil {
			return fmt.Errorf("[[validator]] %d of chain %q: %w", i+1, v.ChainID, err)
		}
		if dropped != "" {
			r.note("[[validator]] addr %q: dropped the node ID %s, kept %s: cosigner cannot pin a node ID, since CometBFT's "+
				"privval listener makes a new SecretConnection key at every start; protect the link with WireGuard or a firewall",
				v.Addr, dropped, addr)
		}
		nodes[v.ChainID] = append(nodes[v.ChainID], addr)
		if v.SecretKey != "" {
			identities = append(identities, r.resolve(v.SecretKey))
		}
		if v.Reconnect != nil && !*v.Reconnect {
			r.note("[[validator]] addr %q: reconnect = false is not carried over: cosigner always redials its nodes", v.Addr)
		}
		if v.MaxHeight != nil {
			r.note("[[validator]] addr %q: max_height = %v is not carried over: cosigner has no height at which it stops signing", v.Addr, v.MaxHeight)
		}
		if v.Timeout != nil {
			r.note("[[validator]] addr %q: timeout = %d is not carried over: cosigner follows the node's own 5 s deadlines", v.Addr, *v.Timeout)
		}
	}

	for name := range r.opts.Heights {
		if chains[name] == nil {
			return fmt.Errorf("--height names chain %q, which has no [[chain]]", name)
		}
	}

	for i := range c.Chain {
		ch := &c.Chain[i]
		if len(nodes[ch.ID]) == 0 {
			r.note("[[chain]] %q has no [[validator]], so TMKMS signs nothing for it: not migrated", ch.ID)
			continue
		}
		owner, ok := owners[ch.ID]
		if !ok {
			return fmt.Errorf("[[chain]] %q has no consensus key: name it in the chain_ids of a [[providers.softsign]] "+
				"or in the keys of a [[providers.yubihsm]]", ch.ID)
		}
		mc := TMKMSChain{ID: ch.ID, Nodes: nodes[ch.ID], KeyFrom: owner.desc}
		if owner.softsign != nil {
			key, err := readTMKMSSoftsignKey(r.resolve(owner.softsign.Path), owner.softsign.KeyFormat, prefixes[ch.ID])
			if err != nil {
				return fmt.Errorf("chain %q: %w", ch.ID, err)
			}
			mc.key = key
			mc.PubKey = key.Public
			if key.Scalar != nil {
				r.note("chain %q: %s is a 64-byte expanded key (no seed): keys/%s.json holds its scalar as a %s file, "+
					"the same validator key; 'cosigner shard' and 'keys reassemble' read that form too", ch.ID, r.resolve(owner.softsign.Path), ch.ID, keys.ScalarKeyType)
			}
			mc.KeyFrom = r.resolve(owner.softsign.Path)
		} else {
			mc.HSMKeyID = owner.hsmKey
		}
		if err := r.readState(ch, &mc); err != nil {
			return err
		}
		r.m.Chains = append(r.m.Chains, mc)
		cc := config.ChainConfig{ID: ch.ID, Bech32Prefix: prefixes[ch.ID], Nodes: mc.Nodes, HSMKeyID: mc.HSMKeyID}
		if mc.HSMKeyID == 0 {
			cc.Key = filepath.Join("keys", ch.ID+".json")
		}
		r.m.Config.Chains = append(r.m.Config.Chains, cc)
	}
	if len(r.m.Chains) == 0 {
		return errors.New("no [[chain]] with a [[validator]]: nothing to migrate")
	}

	r.readIdentity(identities)
	r.m.Config.Metrics.Listen = r.opts.MetricsListen
	if err := r.m.Config.Validate(); err != nil {
		return fmt.Errorf("the cosigner.toml it makes does not validate: %w", err)
	}
	return nil
}

// keyOwners maps each chain to the one provider holding its consensus key.
func (r *tmkmsReader) keyOwners(chains map[string]*tmkmsChain) (map[string]keyOwner, error) {
	owners := map[string]keyOwner{}
	claim := func(chainID string, o keyOwner) error {
		if chains[chainID] == nil {
			return fmt.Errorf("%s lists chain %q, which has no [[chain]]: add the [[chain]] or remove the chain id", o.desc, chainID)
		}
		if prev, ok := owners[chainID]; ok {
			return fmt.Errorf("chain %q has two consensus keys, in %s and in %s: cosigner signs "+
				"each chain with one key; keep only the one the chain's validator uses", chainID, prev.desc, o.desc)
		}
		owners[chainID] = o
		return nil
	}
	for i := range r.cfg.Providers.Softsign {
		s := &r.cfg.Providers.Softsign[i]
		desc := fmt.Sprintf("[[providers.softsign]] %d (path %q)", i+1, s.Path)
		switch s.KeyType {
		case "", "consensus":
		case "account":
			r.note("%s is an account (secp256k1) key: not migrated, cosigner signs consensus messages only", desc)
			continue
		default:
			return nil, fmt.Errorf("%s: key_type = %q is unknown: TMKMS allows \"consensus\" (the default) and \"account\"", desc, s.KeyType)
		}
		if s.Path == "" {
			return nil, fmt.Errorf("%s: path is empty: name the key file", desc)
		}
		for _, id := range s.ChainIDs {
			if err := claim(id, keyOwner{desc: desc, softsign: s}); err != nil {
				return nil, err
			}
		}
	}
	var hsmUsed *tmkmsYubihsm
	for i := range r.cfg.Providers.Yubihsm {
		y := &r.cfg.Providers.Yubihsm[i]
		desc := fmt.Sprintf("[[providers.yubihsm]] %d", i+1)
		used := false
		for _, k := range y.Keys {
			switch k.Type {
			case "", "consensus":
			case "account":
				r.note("%s key %d is an account (secp256k1) key: not migrated, cosigner signs consensus messages only", desc, k.Key)
				continue
			default:
				return nil, fmt.Errorf("%s key %d: type = %q is unknown: TMKMS allows \"consensus\" (the default) and \"account\"", desc, k.Key, k.Type)
			}
			if k.Key < 1 || k.Key > 0xffff {
				return nil, fmt.Errorf("%s: key = %d is not a YubiHSM2 object id (1 to 65535)", desc, k.Key)
			}
			for _, id := range k.ChainIDs {
				if err := claim(id, keyOwner{desc: fmt.Sprintf("%s (key object %d)", desc, k.Key), hsmKey: k.Key}); err != nil {
					return nil, err
				}
			}
			used = true
		}
		if !used {
			continue
		}
		if hsmUsed != nil {
			return nil, fmt.Errorf("%s: a second YubiHSM2 holding consensus keys: cosigner talks to one device; "+
				"migrate the chains of each device into its own cosigner home (one tmkms.toml per device)", desc)
		}
		hsmUsed = y
		if err := r.readYubihsm(desc, y); err != nil {
			return nil, err
		}
	}
	return owners, nil
}

// readYubihsm fills the [hsm] section from a YubiHSM2 provider and reads
// its password.
func (r *tmkmsReader) readYubihsm(desc string, y *tmkmsYubihsm) error {
	switch y.Adapter.Type {
	case "http":
		hp, ok := strings.CutPrefix(y.Adapter.Addr, "tcp://")
		if !ok {
			return fmt.Errorf("%s: adapter addr = %q: want tcp://host:port, yubihsm-connector's address", desc, y.Adapter.Addr)
		}
		r.m.Config.HSM.Connector = hp
	case "usb":
		return fmt.Errorf("%s: adapter type = \"usb\": cosigner reaches the YubiHSM2 through yubihsm-connector; "+
			"run yubihsm-connector on this host (it listens on 127.0.0.1:12345), set "+
			"adapter = { type = \"http\", addr = \"tcp://127.0.0.1:12345\" } in a copy of tmkms.toml and migrate from the copy", desc)
	default:
		return fmt.Errorf("%s: adapter type = %q is unknown: TMKMS allows \"http\" and \"usb\"", desc, y.Adapter.Type)
	}
	if y.Auth.Key == nil {
		return fmt.Errorf("%s: auth has no key: name the authentication key, auth = { key = 1, password_file = \"...\" }", desc)
	}
	r.m.Config.HSM.AuthKeyID = *y.Auth.Key
	switch {
	case y.Auth.PasswordFile != "" && y.Auth.Password != "":
		return fmt.Errorf("%s: auth names both password and password_file: keep one", desc)
	case y.Auth.PasswordFile != "":
		p := r.resolve(y.Auth.PasswordFile)
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: auth password_file: %w%s", desc, err, pathMapHint(err))
		}
		// TMKMS trims the end of the file, and only the end.
		r.m.hsmPassword = strings.TrimRight(string(data), " \t\r\n")
	case y.Auth.Password != "":
		r.m.hsmPassword = y.Auth.Password
		r.note("%s: the password was written in tmkms.toml; cosigner keeps it in %s (mode 0600), never in cosigner.toml: "+
			"remove it from tmkms.toml", desc, r.m.Config.HSM.PasswordFile)
	default:
		return fmt.Errorf("%s: auth has neither password_file nor password", desc)
	}
	if r.m.hsmPassword == "" || strings.ContainsAny(r.m.hsmPassword, "\r\n") {
		return fmt.Errorf("%s: the authentication key's password is empty or spans several lines", desc)
	}
	if y.SerialNumber != "" {
		r.note("%s: serial_number is not carried over: cosigner uses the device behind the connector", desc)
	}
	if y.ConnectorServer != nil {
		r.note("%s: connector_server is not carried over: run Yubico's yubihsm-connector instead", desc)
	}
	return nil
}

// tmkmsNodeAddress turns a [[validator]] addr into a cosigner node address,
// returning the node ID it dropped.
func tmkmsNodeAddress(addr string) (string, string, error) {
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		hp := strings.TrimPrefix(addr, "tcp://")
		var id string
		if i := strings.LastIndex(hp, "@"); i >= 0 {
			id, hp = hp[:i], hp[i+1:]
		}
		if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || port == "" {
			return "", "", fmt.Errorf("addr = %q: want tcp://[id@]host:port", addr)
		}
		return "tcp://" + hp, id, nil
	case strings.HasPrefix(addr, "unix://"):
		if err := config.ValidateNodeAddress(addr); err != nil {
			return "", "", fmt.Errorf("addr: %w", err)
		}
		return addr, "", nil
	}
	return "", "", fmt.Errorf("addr = %q: want tcp://[id@]host:port or unix:///path", addr)
}

// readState imports a chain's TMKMS state file, or the --height given for
// it, whichever is higher.
func (r *tmkmsReader) readState(ch *tmkmsChain, mc *TMKMSChain) error {
	path := ch.StateFile
	if path == "" {
		path = ch.ID + "_priv_validator_state.json" // TMKMS's default
	}
	path = r.resolve(path)
	height, haveHeight := r.opts.Heights[ch.ID]
	if haveHeight && height < 0 {
		return fmt.Errorf("--height %s=%d is negative", ch.ID, height)
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && haveHeight:
		mc.Mark, mc.StateFrom, mc.StateKind = signstate.Mark{Height: height}, "--height", "height"
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("chain %q: state file %s is missing, so what TMKMS signed is unknown: if tmkms.toml names paths "+
			"inside a container, read them from the host with --path-map (like --path-map /tmkms=/srv/sekin/tmkms); otherwise "+
			"copy the file from the TMKMS host, or pass --height %s=N with N above any height TMKMS may have signed "+
			"(the chain's latest block height + 2 is one)", ch.ID, path, ch.ID)
	case err != nil:
		return fmt.Errorf("chain %q: read state file: %w", ch.ID, err)
	}
	m, kind, err := signstate.ParseForeignState(data, ch.ID)
	if err != nil {
		return fmt.Errorf("chain %q: state file %s is not a TMKMS state file (%v): TMKMS writes "+
			`{"height":"N","round":"R","step":0|1|2,"block_id":...}; give the file TMKMS wrote, or pass --height %s=N `+
			"with N above any height TMKMS may have signed (the chain's latest block height + 2 is one)", ch.ID, path, err, ch.ID)
	}
	mc.Mark, mc.StateFrom, mc.StateKind = m, path, kind
	if kind != "TMKMS" {
		r.note("chain %q: state file %s is in %s's format (TMKMS has not written to it): imported as such", ch.ID, path, kind)
	}
	if haveHeight && height > m.Height {
		r.note("chain %q: --height %d is above the state file's %d/%d/%d: cosigner starts at height %d",
			ch.ID, height, m.Height, m.Round, m.Step, height)
		mc.Mark, mc.StateKind = signstate.Mark{Height: height}, "height"
	}
	if mc.Mark.Height == 0 {
		r.note("chain %q: the state is at height 0 (TMKMS never signed with it): cosigner will sign at any height; "+
			"if the chain is past height 0, migrate again with --height %s=N, N above any height TMKMS may have signed", ch.ID, ch.ID)
	}
	return nil
}

// readIdentity imports TMKMS's SecretConnection identity, or makes a
// fresh one and says why. CometBFT's node does not check the signer's
// identity, so a fresh one changes nothing the node sees but the node ID in
// its log.
func (r *tmkmsReader) readIdentity(paths []string) {
	distinct := map[string]bool{}
	var uniq []string
	for _, p := range paths {
		if !distinct[p] {
			distinct[p] = true
			uniq = append(uniq, p)
		}
	}
	if len(uniq) == 0 {
		r.note("no [[validator]] names a secret_key: made a fresh SecretConnection identity")
	} else {
		key, why := readTMKMSIdentity(uniq[0])
		if key != nil {
			r.m.identity, r.m.IdentityFrom = key, uniq[0]
			if len(uniq) > 1 {
				r.note("the [[validator]]s name %d secret_key files; cosigner has one identity for every node and imported %s",
					len(uniq), uniq[0])
			}
		} else {
			r.note("secret_key not imported (%s): made a fresh SecretConnection identity", why)
		}
	}
	if r.m.identity == nil {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		r.m.identity = key
	}
	r.m.IdentityNodeID = privval.NodeID(r.m.identity.Public().(ed25519.PublicKey))
}

// Write creates the cosigner home: cosigner.toml, the identity, each
// chain's key file (0600) and sign state, and the YubiHSM2 password file.
// It writes into a temporary directory and renames it into place, so home
// appears complete or not at all; into an existing empty directory (a
// container's volume, say, which cannot be replaced) it moves the files in
// one by one, cosigner.toml last, and removes them again on failure. It
// refuses a home that is not empty (ErrHomeExists).
func (m *TMKMSMigration) Write(home string) error {
	home = filepath.Clean(home)
	exists, err := checkNewHome(home)
	if err != nil {
		return err
	}
	if exists {
		return m.writeIntoEmpty(home)
	}
	parent := filepath.Dir(home)
	if err := fsutil.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(home)+".migrate-")
	if err != nil {
		return fmt.Errorf("create the new home: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := m.writeInto(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, home); err != nil {
		if _, err2 := checkNewHome(home); err2 != nil {
			return err2 // created meanwhile
		}
		return fmt.Errorf("move the new home into place: %w", err)
	}
	done = true
	return fsutil.SyncDir(parent)
}

// writeIntoEmpty writes the home into the existing empty directory home.
func (m *TMKMSMigration) writeIntoEmpty(home string) error {
	tmp, err := os.MkdirTemp(home, ".migrate-")
	if err != nil {
		return fmt.Errorf("write into %s: %w", home, err)
	}
	defer os.RemoveAll(tmp)
	if err := m.writeInto(tmp); err != nil {
		return err
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	// cosigner.toml last: until it is there, the directory is no home.
	names := []string{}
	for _, e := range entries {
		if e.Name() != config.FileName {
			names = append(names, e.Name())
		}
	}
	names = append(names, config.FileName)
	var moved []string
	for _, n := range names {
		if err := os.Rename(filepath.Join(tmp, n), filepath.Join(home, n)); err != nil {
			for _, p := range moved {
				os.RemoveAll(p)
			}
			return fmt.Errorf("move %s into %s: %w", n, home, err)
		}
		moved = append(moved, filepath.Join(home, n))
	}
	return fsutil.SyncDir(home)
}

// checkNewHome reports whether home exists (and is empty); a home that
// is not empty is ErrHomeExists.
func checkNewHome(home string) (bool, error) {
	entries, err := os.ReadDir(home)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %s (%v)", ErrHomeExists, home, err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%w: %s is not empty", ErrHomeExists, home)
	}
	return true, nil
}

func (m *TMKMSMigration) writeInto(dir string) error {
	cfg := m.Config
	for _, d := range []string{filepath.Join(dir, "keys"), filepath.Join(dir, cfg.StateDir)} {
		if err := fsutil.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := fsutil.WriteNew(filepath.Join(dir, cfg.IdentityKey), keys.MarshalNodeKey(m.identity)); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	if cfg.HSM.Enabled() {
		if err := fsutil.WriteNew(filepath.Join(dir, cfg.HSM.PasswordFile), []byte(m.hsmPassword+"\n")); err != nil {
			return fmt.Errorf("write hsm password file: %w", err)
		}
	}
	for i, ch := range m.Chains {
		if ch.key != nil {
			p := filepath.Join(dir, cfg.Chains[i].Key)
			var data []byte
			if ch.key.Scalar != nil {
				data = keys.MarshalScalarKey(ch.key.Scalar)
			} else {
				data = keys.MarshalPrivValidatorKey(ch.key.Seed)
			}
			err := fsutil.WriteNew(p, data)
			clear(data)
			if err != nil {
				return fmt.Errorf("write key of chain %s: %w", ch.ID, err)
			}
		}
		p := signstate.StatePath(filepath.Join(dir, cfg.StateDir), ch.ID)
		if err := signstate.WriteMark(p, ch.ID, ch.Mark, false); err != nil {
			return fmt.Errorf("write sign state of chain %s: %w", ch.ID, err)
		}
	}
	if err := fsutil.WriteNew(filepath.Join(dir, config.FileName), cfg.Marshal()); err != nil {
		return fmt.Errorf("write %s: %w", config.FileName, err)
	}
	// What start will read must load: check before the home appears.
	if _, err := config.Load(dir); err != nil {
		return fmt.Errorf("the written configuration does not load (a bug): %w", err)
	}
	return nil
}
