// Package limits owns resource sizes, their parsing, defaults and policy.
package limits

import (
	"fmt"
	"strings"

	units "github.com/docker/go-units"
)

// maxBytes bounds a size: go-units computes in float64, which holds every
// whole number of bytes up to 2^53 (8 PiB) exactly, far above any limit.
const maxBytes = 1 << 53

// ParseBytes parses a size the way podman's --memory does, with go-units'
// RAMInBytes: a number of bytes, optionally followed by a binary unit b, k,
// m, g, t or p (any case, with an optional trailing "b" or "ib": "20m",
// "512k", "1.5g", "16MiB"). A fraction is taken as Podman takes it
// ("1.5g" is 1610612736 bytes). Unlike Podman, a size starts with a digit
// ("+1m" and ".5g" are refused) and must be greater than zero.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size; use bytes or a number with k, m or g, such as 20m")
	}
	n, err := units.RAMInBytes(t)
	if err != nil || !isDigit(t[0]) {
		return 0, fmt.Errorf("%q is not a size; use bytes or a whole number with k, m or g, such as 20m", s)
	}
	if n < 0 || n > maxBytes { // past float64's whole numbers, or past int64
		return 0, fmt.Errorf("%q is too large", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%q must be greater than zero", s)
	}
	return n, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
