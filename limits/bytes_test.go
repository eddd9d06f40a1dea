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
		{"+1m", 0},
		{"1.5g", 0},
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
