package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/rs/zerolog"
)

// BenchmarkRoundTrip measures the worker's own share of a call: framing,
// id swap, dispatch and reply, for a method that does no work, one call
// at a time through pipes.
func BenchmarkRoundTrip(b *testing.B) {
	methods := map[string]Method{"ping": func(context.Context, json.RawMessage) (any, error) { return "Pong", nil }}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := NewServer(methods, Options{Logger: zerolog.New(io.Discard)})
	go s.Serve(context.Background(), inR, outW)
	rd := bufio.NewReader(outR)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Fprintf(inW, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`+"\n", i)
		if _, err := rd.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	inW.Close()
}
