package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// BenchmarkRoundTrip measures the worker's own share of a call: framing,
// id swap, dispatch and reply, for a method that does no work, one call
// at a time through pipes.
func BenchmarkRoundTrip(b *testing.B) {
	benchRoundTrip(b, "")
}

// BenchmarkRoundTripLargeParams is the same with 1 MiB of params, the
// size of a small add_file: what the framing costs per byte of params.
func BenchmarkRoundTripLargeParams(b *testing.B) {
	benchRoundTrip(b, `,"params":{"content":"`+strings.Repeat("x", 1<<20)+`"}`)
}

func benchRoundTrip(b *testing.B, params string) {
	methods := map[string]Method{"ping": func(_ context.Context, p json.RawMessage) (any, error) { return len(p), nil }}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := NewServer(methods, Options{Logger: zerolog.New(io.Discard)})
	go s.Serve(context.Background(), inR, outW)
	rd := bufio.NewReader(outR)
	b.SetBytes(int64(len(params)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(inW, `{"jsonrpc":"2.0","id":%d,"method":"ping"%s}`+"\n", i, params)
		if _, err := rd.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	inW.Close()
}
