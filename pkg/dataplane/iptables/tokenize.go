package iptables

import (
	"errors"
	"strings"
)

// token is one word of a rule line. quoted records that it came (at least in
// part) from a double-quoted string, so a comment such as "-x" is never taken
// for an option.
type token struct {
	text   string
	quoted bool
}

// tokenize splits a rule line the way iptables-restore reads it: words are
// separated by blanks, double quotes group a word, and inside quotes a
// backslash escapes the next character (iptables-save writes \" \\ and \'
// there). A backslash outside quotes is also taken as an escape, which is
// what iptables-restore does.
func tokenize(line string) ([]token, error) {
	var (
		toks    []token
		cur     strings.Builder
		inWord  bool
		quoted  bool
		inQuote bool
	)
	flush := func() {
		if inWord {
			toks = append(toks, token{text: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("line ends in a lone backslash")
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == '"':
			inQuote = !inQuote
			inWord, quoted = true, true
		case !inQuote && (c == ' ' || c == '\t'):
			flush()
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		return nil, errors.New("unterminated double quote")
	}
	flush()
	return toks, nil
}
