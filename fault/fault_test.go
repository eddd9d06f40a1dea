package fault

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestParamErrorsNameTheirField(t *testing.T) {
	for _, tc := range []struct {
		err        *Error
		kind       Kind
		msg, field string
	}{
		{Invalid("memory", "%q is below the 6m minimum", "1k"), KindInvalidParams, `Invalid params: "memory": "1k" is below the 6m minimum`, "memory"},
		{Forbidden("cpus", "%v is above %g cores", 4, 2.0), KindForbidden, `Forbidden: "cpus": 4 is above 2 cores`, "cpus"},
		{Param(KindInvalidParams, "count", `"count" must be 0 or more`), KindInvalidParams, `Invalid params: "count" must be 0 or more`, "count"},
		{Param(KindForbidden, "file", "line %d: no", 3), KindForbidden, "Forbidden: line 3: no", "file"},
		// A format without args keeps its percent signs for Sprintf's
		// rules only: the param's name is never read as a verb.
		{Invalid("a%sb", "bad"), KindInvalidParams, `Invalid params: "a%sb": bad`, "a%sb"},
	} {
		if tc.err.Kind != tc.kind || tc.err.Message != tc.msg || tc.err.Fields["field"] != tc.field {
			t.Errorf("got %v %q field %v; want %v %q field %q", tc.err.Kind, tc.err.Message, tc.err.Fields["field"], tc.kind, tc.msg, tc.field)
		}
	}
}

func TestAsClassifiesAnyError(t *testing.T) {
	own := Errorf(KindNotFound, "no such image")
	for _, tc := range []struct {
		in   error
		want Kind
	}{
		{own, KindNotFound},
		{fmt.Errorf("pulling: %w", own), KindNotFound},
		{context.DeadlineExceeded, KindTimeout},
		{fmt.Errorf("waiting: %w", context.Canceled), KindCancelled},
		{errors.New("boom"), KindInternal},
	} {
		got := As(tc.in)
		if got.Kind != tc.want {
			t.Errorf("As(%v) is %v, want %v", tc.in, got.Kind, tc.want)
		}
		if tc.want != KindNotFound && !errors.Is(got, tc.in) {
			t.Errorf("As(%v) lost its cause", tc.in)
		}
	}
	if As(fmt.Errorf("x: %w", own)) != own {
		t.Error("As did not answer the *Error in the chain itself")
	}
}

func TestEveryKindHasAName(t *testing.T) {
	for _, k := range Kinds() {
		if kindNames[k] == "" {
			t.Errorf("kind %d has no name", int(k))
		}
	}
	if Kind(99).String() != "Kind(99)" {
		t.Errorf("an unknown kind reads %q", Kind(99).String())
	}
}
