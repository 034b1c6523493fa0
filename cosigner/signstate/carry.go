package signstate

import (
	"bytes"

	"github.com/cosigner/cosigner/privval"
)

// Highest returns the mark a signer must start from to refuse everything
// any of marks refuses: the highest height/round/step among them. When two
// marks at that height/round/step hold different content (two cosigners
// released shares for different blocks there, which only a faulty leader
// asks for), the result keeps the height/round/step without sign bytes,
// and Decide then refuses every request at it: either content may have
// been signed, so neither may be signed again. Signatures are dropped
// (a cosigner's mark carries none). Highest of no marks is the zero Mark.
//
// A resharing uses it to carry the old cluster's marks to every new
// member.
func Highest(marks []Mark) Mark {
	var out Mark
	have := false
	for _, m := range marks {
		switch {
		case !have || Above(m.Height, m.Round, m.Step, out.Height, out.Round, out.Step):
			out = Mark{Height: m.Height, Round: m.Round, Step: m.Step, SignBytes: bytes.Clone(m.SignBytes)}
			have = true
		case m.Height == out.Height && m.Round == out.Round && m.Step == out.Step:
			if !sameContent(out.SignBytes, m.SignBytes) {
				out.SignBytes = nil
			}
		}
	}
	if out.Step == 0 {
		// Nothing signed at that height: no content to keep.
		out.SignBytes = nil
	}
	return out
}

// sameContent reports whether two sign bytes at one height/round/step are
// the same message, at most the timestamp differing.
func sameContent(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	only, err := privval.OnlyTimestampDiffers(a, b)
	return err == nil && only
}
