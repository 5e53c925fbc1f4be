package memory_test

import (
	"testing"

	"github.com/ecomstream/ecomstream/services/ingester/internal/source/memory"
	"github.com/ecomstream/ecomstream/services/ingester/internal/source/sourcetest"
)

func TestMemoryKeepsTheSourceContract(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) sourcetest.Harness {
		src := memory.New(nil)
		return sourcetest.Harness{Source: src, Put: func(name string, data []byte) { src.Put(name, data) }, Remove: src.Remove}
	})
}
