package harness

import (
	"strconv"
	"strings"
)

// ParseSlogText parses one line of log/slog's text handler output
// (key=value pairs, values quoted with Go syntax when they need it) into a
// map. Malformed pairs are skipped.
func ParseSlogText(line string) map[string]string {
	attrs := map[string]string{}
	s := strings.TrimSpace(line)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		key := s[:eq]
		if sp := strings.IndexByte(key, ' '); sp >= 0 {
			// A bare word without '=': skip it.
			s = strings.TrimLeft(s[sp:], " ")
			continue
		}
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := closingQuote(s)
			if end < 0 {
				attrs[key] = s
				break
			}
			uq, err := strconv.Unquote(s[:end+1])
			if err != nil {
				uq = s[1:end]
			}
			val, s = uq, s[end+1:]
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				val, s = s, ""
			} else {
				val, s = s[:sp], s[sp:]
			}
		}
		attrs[key] = val
		s = strings.TrimLeft(s, " ")
	}
	return attrs
}

// closingQuote returns the index of the quote ending the Go string literal
// at the start of s, or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// SignRecord is one "signed ..." log line of `cosigner start`.
type SignRecord struct {
	// Run numbers the cosigner process (1 for the first start, 2 after a
	// restart, ...).
	Run    int
	Step   string // "proposal", "prevote" or "precommit"
	Height int64
	Round  int32
	Block  string
	Chain  string
	Node   string
	Line   string
}

// ParseSignRecord returns the record of a "signed proposal|prevote|precommit"
// line, or false for any other line.
func ParseSignRecord(line string) (SignRecord, bool) {
	if !strings.Contains(line, "msg=") || !strings.Contains(line, "signed ") {
		return SignRecord{}, false
	}
	a := ParseSlogText(line)
	step, ok := strings.CutPrefix(a["msg"], "signed ")
	if !ok {
		return SignRecord{}, false
	}
	switch step {
	case "proposal", "prevote", "precommit":
	default:
		return SignRecord{}, false
	}
	h, err := strconv.ParseInt(a["height"], 10, 64)
	if err != nil {
		return SignRecord{}, false
	}
	r, err := strconv.ParseInt(a["round"], 10, 32)
	if err != nil {
		return SignRecord{}, false
	}
	return SignRecord{Step: step, Height: h, Round: int32(r), Block: a["block"], Chain: a["chain"], Node: a["node"], Line: line}, true
}
