package grains_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/persistence"
)

func TestFailedNamesTheSentinelOfItsCode(t *testing.T) {
	for _, tc := range []struct {
		code string
		want error
	}{
		{grains.CodeInvalidArgument, grains.ErrInvalidArgument},
		{grains.CodeConflict, grains.ErrConflict},
		{grains.CodeUnavailable, grains.ErrUnavailable},
		{grains.CodeQuotaExceeded, grains.ErrQuotaExceeded},
		{"from_a_newer_node", grains.ErrUnavailable},
	} {
		err := grains.Failed(&grains.Failure{Code: tc.code, Message: "the grain's words"})
		if !errors.Is(err, tc.want) {
			t.Errorf("code %q: %v is not %v", tc.code, err, tc.want)
		}
		if err.Error() != "the grain's words" {
			t.Errorf("code %q: message %q, want the grain's own", tc.code, err.Error())
		}
	}
}

func TestStoreFailureCarriesTheQuotaAndHidesOtherCauses(t *testing.T) {
	over := fmt.Errorf("append to session acme:x: %w", &persistence.QuotaError{Quota: persistence.QuotaSessions, Limit: 1, Used: 1})
	err := grains.Failed(grains.StoreFailure("append", over))
	if !errors.Is(err, grains.ErrQuotaExceeded) || grains.QuotaOf(err) != persistence.QuotaSessions {
		t.Fatalf("%v (quota %q): want ErrQuotaExceeded naming %s", err, grains.QuotaOf(err), persistence.QuotaSessions)
	}
	f := grains.StoreFailure("append", errors.New("disk on fire at /var/lib/secret"))
	if f.GetCode() != grains.CodeUnavailable || f.GetQuota() != "" || strings.Contains(f.GetMessage(), "secret") {
		t.Fatalf("%+v: want unavailable, with the cause kept to the log", f)
	}
}

func TestCallFailedKeepsCancellationApart(t *testing.T) {
	cause := errors.New("no member")
	if err := grains.CallFailed("get", cause); !errors.Is(err, grains.ErrUnavailable) || !errors.Is(err, cause) {
		t.Errorf("%v: want ErrUnavailable with its cause kept", err)
	}
	if err := grains.CallFailed("get", context.Canceled); errors.Is(err, grains.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("%v: a cancelled call is the caller's, not unavailable", err)
	}
}

func TestAKindsOwnErrorIsItsSentinelToo(t *testing.T) {
	errBadKey := &grains.Error{Kind: grains.ErrInvalidArgument, Message: "invalid key"}
	wrapped := errors.Join(errors.New("context"), errBadKey)
	if !errors.Is(wrapped, errBadKey) || !errors.Is(wrapped, grains.ErrInvalidArgument) || errors.Is(wrapped, grains.ErrConflict) {
		t.Errorf("%v: errors.Is should see the kind's error and its sentinel only", wrapped)
	}
}
