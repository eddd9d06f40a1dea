package limits

import "testing"

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: an error is expected
	}{
		{"20m", 20 << 20},
		{"20M", 20 << 20},
		{"20mb", 20 << 20},
		{"16MiB", 16 << 20},
		{"512k", 512 << 10},
		{"1g", 1 << 30},
		{"2t", 2 << 40},
		{"4096", 4096},
		{"4096b", 4096},
		{" 1g ", 1 << 30},
		{"", 0},
		{"0", 0},
		{"0m", 0},
		{"-1m", 0},
		{"1e400", 0},
		{"+1m", 0},
		{"1.5g", 3 << 29}, // as podman run --memory 1.5g
		{"0.5m", 512 << 10},
		{"1.5", 1},
		{"2p", 2 << 50},
		{"20 m", 20 << 20},
		{".5g", 0},
		{"0.1", 0},
		{"1.2.3m", 0},
		{"20mib", 20 << 20},
		{"20kk", 0},
		{"9p", 0},
		{"m", 0},
		{"20x", 0},
		{"twenty", 0},
		{"9223372036854775807k", 0},
		{"iB", 0}, // crashed: found by FuzzParseBytes
		{"b", 0},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("ParseBytes(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

// TestParseBytesMessages pins the words of each refusal, which reach callers
// unchanged since sizes were parsed by hand.
func TestParseBytesMessages(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "empty size; use bytes or a number with k, m or g, such as 20m",
		"20x":                  `"20x" is not a size; use bytes or a whole number with k, m or g, such as 20m`,
		"+1m":                  `"+1m" is not a size; use bytes or a whole number with k, m or g, such as 20m`,
		"0m":                   `"0m" must be greater than zero`,
		"9223372036854775807k": `"9223372036854775807k" is too large`,
	} {
		if _, err := ParseBytes(in); err == nil || err.Error() != want {
			t.Errorf("ParseBytes(%q) = %v; want %q", in, err, want)
		}
	}
}
