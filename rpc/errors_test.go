package rpc

import (
	"testing"

	"github.com/podman-worker/podman-worker/fault"
)

// Every kind of the vocabulary has its wire values: a kind added to fault
// without a row here would go out as code 0, type "" and status 0.
func TestEveryKindHasWireValues(t *testing.T) {
	for _, k := range fault.Kinds() {
		if Code(k) == 0 || Type(k) == "" || Status(k) == 0 {
			t.Errorf("kind %v: code %d, type %q, status %d", k, Code(k), Type(k), Status(k))
		}
	}
	if len(codes) != len(fault.Kinds()) {
		t.Errorf("the table has %d rows for %d kinds", len(codes), len(fault.Kinds()))
	}
}
