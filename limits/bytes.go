// Package limits owns resource sizes, their parsing, defaults and policy.
package limits

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseBytes parses a size the way podman's --memory does: a whole number
// of bytes, optionally followed by a binary unit b, k, m, g or t (any case,
// with an optional trailing "b" or "ib": "20m", "512k", "1g", "16MiB").
// Zero, negative, fractional and unknown units are refused.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty size; use bytes or a number with k, m or g, such as 20m")
	}
	t = strings.TrimSuffix(t, "ib")
	if len(t) > 1 && t[len(t)-1] == 'b' && !isDigit(t[len(t)-2]) {
		t = t[:len(t)-1] // "mb" -> "m"
	}
	if t == "" { // "iB" alone: found by FuzzParseBytes (testdata/fuzz)
		return 0, fmt.Errorf("%q is not a size; use bytes or a whole number with k, m or g, such as 20m", s)
	}
	mult := int64(1)
	switch t[len(t)-1] {
	case 'b':
		t = t[:len(t)-1]
	case 'k':
		mult, t = 1<<10, t[:len(t)-1]
	case 'm':
		mult, t = 1<<20, t[:len(t)-1]
	case 'g':
		mult, t = 1<<30, t[:len(t)-1]
	case 't':
		mult, t = 1<<40, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || t == "" || !isDigit(t[0]) {
		return 0, fmt.Errorf("%q is not a size; use bytes or a whole number with k, m or g, such as 20m", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%q must be greater than zero", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
