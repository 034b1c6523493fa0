package migrate

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// The fuzz targets feed arbitrary bytes to the readers of Horcrux's files
// and of the public-share file: no panic, and what is accepted is
// consistent.

func FuzzParseHorcruxShard(f *testing.F) {
	f.Add([]byte(`{"pubKey":"CiD4WhFP56Vr7AYx/Dd5Kr6TQHDt/iQ6hwcJ3mcgXeZPhQ==","privateShard":"c0tBaGcd/1BXD8a4n2cebt82n8emmlZy55jkzlr9Wwg=","id":1}`))
	f.Add([]byte(`{"pubKey":"FiTeZCD4WhFP56Vr7AYx/Dd5Kr6TQHDt/iQ6hwcJ3mcgXeZPhQ==","privateShard":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","id":3}`))
	f.Add([]byte(`{"pubKey":"EiEC","privateShard":"","id":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseHorcruxShard(data)
		if err != nil {
			return
		}
		if len(s.pub) != 32 || s.id < 1 || s.id > 255 || s.secret == nil || s.public == nil {
			t.Fatalf("accepted an inconsistent shard: %+v", s)
		}
	})
}

func FuzzParseHorcruxState(f *testing.F) {
	vote := testkit.VoteOf("kira-1", 46, 0, privval.StepPrecommit, "A", testkit.T0)
	f.Add([]byte(`{"height":"0","round":"0","step":0,"nonce_public":null}`))
	f.Add([]byte(`{"height":"46","round":"0","step":3,"nonce_public":"","signature":"","signbytes":"` + hexUpper(vote.SignBytes) + `","vote_ext_signature":""}`))
	f.Add([]byte(`{"height":"46","round":"0","step":3,"signbytes":"00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseHorcruxState(data, "kira-1")
		if err != nil {
			return
		}
		if m.Height < 0 || m.Round < 0 || m.Step > privval.StepPrecommit || len(m.Signature) != 0 {
			t.Fatalf("accepted an inconsistent mark: %+v", m)
		}
		if len(m.SignBytes) > 0 {
			info, err := privval.ParseSignBytes(m.SignBytes)
			if err != nil || info.ChainID != "kira-1" || info.Height != m.Height || info.Round != m.Round || info.Step != m.Step {
				t.Fatalf("accepted sign bytes that are not the mark's: %+v, %v", info, err)
			}
		}
	})
}

func FuzzParseHorcruxPublic(f *testing.F) {
	f.Add([]byte(`{"type":"cosigner/horcrux-public-share","id":1,"threshold":2,"shares":3,"chains":[{"chain_id":"kira-1","pub_key":"+FoRT+ela+wGMfw3eSq+k0Bw7f4kOocHCd5nIF3mT4U=","public_share":"aMesBKCkjr8k3kpETmFnZJqrGCvaRpIE+72k6BVC2EQ="}]}`))
	f.Add([]byte(`{"type":"x","id":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseHorcruxPublic(data)
		if err != nil {
			return
		}
		if p.ID < 1 || p.ID > p.Shares {
			t.Fatalf("accepted id %d of %d", p.ID, p.Shares)
		}
	})
}

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
