package oidcclient_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/oidcclient"
)

func TestRedisStore(t *testing.T) {
	url, _, _ := testredis.Start(t)
	s, err := oidcclient.NewRedisStore(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	if _, err := s.LoadSession(ctx, "nope"); !errors.Is(err, oidcclient.ErrNoSession) {
		t.Errorf("unknown id: %v, want ErrNoSession", err)
	}
	if err := s.SaveSession(ctx, "id-1", []byte("data"), time.Minute, oidcclient.SessionOwner{}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.LoadSession(ctx, "id-1"); err != nil || string(b) != "data" {
		t.Errorf("load: %q %v", b, err)
	}
	if err := s.DeleteSession(ctx, "id-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSession(ctx, "id-1"); !errors.Is(err, oidcclient.ErrNoSession) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	if _, err := oidcclient.NewRedisStore("redis://:s3cret@%zz"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v (must fail without repeating the password)", err)
	}
}
