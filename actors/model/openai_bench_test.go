package model_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
)

// BenchmarkOpenAIStream is one streamed reply of the mock's length through
// the provider from the fake upstream in this process, one at a time and
// 32 at once: the provider's share of what the openai rows of parley-bench
// measure (the fake's own work is in the figures too).
func BenchmarkOpenAIStream(b *testing.B) {
	reply := model.Tokens(model.MockReply(model.Request{Message: "a benchmark message of a few words"}))
	s := openaitest.Start(openaitest.Hooks{Reply: func(openaitest.ChatRequest) []string { return reply }, Forget: true})
	defer s.Close()
	m, err := model.NewOpenAI(model.Config{BaseURL: s.BaseURL(), Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	req := model.Request{Prompt: "You are a helpful assistant.", Message: "a benchmark message of a few words"}
	one := func() error {
		n := 0
		if _, err := m.Stream(context.Background(), req, func(string) error { n++; return nil }); err != nil {
			return err
		}
		if n != len(reply) {
			return fmt.Errorf("%d tokens, want %d", n, len(reply))
		}
		return nil
	}
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			if conc == 1 {
				for b.Loop() {
					if err := one(); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := one(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
