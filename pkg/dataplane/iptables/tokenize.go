package iptables

import (
	"errors"
)

// token is one word of a rule line. quoted records that it came (at least in
// part) from a double-quoted string, so a comment such as "-x" is never taken
// for an option.
type token struct {
	text   string
	quoted bool
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// tokenize splits a rule line the way iptables-restore reads it: words are
// separated by blanks, double quotes group a word, and a backslash escapes
// the next character (iptables-save writes \" \\ and \' inside quotes;
// iptables-restore honours the escape outside quotes too).
//
// Plain words and words that are one quoted string without escapes (nearly
// every word of a real dump) share the line's memory; only words with
// escapes or mixed quoting are copied.
func tokenize(line string) ([]token, error) {
	toks := make([]token, 0, 24)
	for i := 0; ; {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i >= len(line) {
			return toks, nil
		}
		start, quotes, escapes, inQuote := i, 0, false, false
		for i < len(line) {
			c := line[i]
			if c == '\\' {
				if i+1 >= len(line) {
					return nil, errors.New("line ends in a lone backslash")
				}
				escapes = true
				i += 2
				continue
			}
			if c == '"' {
				inQuote = !inQuote
				quotes++
			} else if !inQuote && isBlank(c) {
				break
			}
			i++
		}
		if inQuote {
			return nil, errors.New("unterminated double quote")
		}
		word := line[start:i]
		switch {
		case !escapes && quotes == 0:
			toks = append(toks, token{text: word})
		case !escapes && quotes == 2 && word[0] == '"' && word[len(word)-1] == '"':
			toks = append(toks, token{text: word[1 : len(word)-1], quoted: true})
		default:
			toks = append(toks, token{text: unquote(word), quoted: quotes > 0})
		}
	}
}

// unquote removes the quotes and escapes of one word that tokenize has
// already found well formed.
func unquote(word string) string {
	b := make([]byte, 0, len(word))
	for i := 0; i < len(word); i++ {
		switch c := word[i]; c {
		case '\\':
			i++
			b = append(b, word[i])
		case '"':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
