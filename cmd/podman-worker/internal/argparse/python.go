package argparse

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// How Python reads and writes the values argparse converts and quotes.

// pyText is how Python's int() and float() see their argument: surrounding
// whitespace stripped, any decimal digit read as its ASCII digit.
func pyText(s string) (string, bool) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return "", false // not UTF-8: Python's surrogate escapes are no digits
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case unicode.IsDigit(r):
			// Decimal digits come in runs of ten, each from 0 to 9.
			zero := r
			for unicode.IsDigit(zero - 1) {
				zero--
			}
			b.WriteByte(byte('0' + (r-zero)%10))
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimFunc(b.String(), func(r rune) bool {
		return r == ' ' || (r >= '\t' && r <= '\r') || (r >= 0x1c && r <= 0x1f)
	}), true
}

var (
	pyDigits   = `[0-9](?:_?[0-9])*`
	pyIntText  = regexp.MustCompile(`^[+-]?` + pyDigits + `$`)
	pyFloatNum = regexp.MustCompile(`^[+-]?(?:` + pyDigits + `(?:\.(?:` + pyDigits + `)?)?|\.` + pyDigits + `)(?:[eE][+-]?` + pyDigits + `)?$`)
	pyFloatInf = regexp.MustCompile(`(?i)^[+-]?(?:inf|infinity|nan)$`)
)

// pyFloat is Python's float(str): "1e3", " 0.5 ", "1_000", "inf".
func pyFloat(s string) (float64, bool) {
	t, ok := pyText(s)
	if !ok {
		return 0, false
	}
	switch {
	case pyFloatInf.MatchString(t):
		f, _ := strconv.ParseFloat(strings.ToLower(t), 64)
		if strings.Contains(strings.ToLower(t), "nan") {
			f = math.NaN()
		}
		return f, true
	case pyFloatNum.MatchString(t):
		f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
		return f, true // out of range is ±inf, as in Python
	}
	return 0, false
}

// pyInt is Python's int(str): "7", " +7 ", "007", "1_000"; the result in
// JSON's form.
func pyInt(s string) (string, bool) {
	t, ok := pyText(s)
	if !ok || !pyIntText.MatchString(t) {
		return "", false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(strings.TrimPrefix(t, "+"), "_", ""), 10)
	if !ok {
		return "", false
	}
	return n.String(), true
}

// pyRepr is Python's repr of a str, as argparse's messages quote values:
// 'x', or "it's" when the value holds a single quote and no double one.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// Python reads a byte that is not UTF-8 as a surrogate escape.
			fmt.Fprintf(&b, `\udc%02x`, s[i])
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	b.WriteByte(quote)
	return b.String()
}
