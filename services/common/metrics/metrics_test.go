package metrics

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ecomstream/ecomstream/services/common/buildinfo"
	"github.com/ecomstream/ecomstream/services/common/replica"
)

func TestRegistryHasBuildInfoAndPassesLint(t *testing.T) {
	replica.Set("ingester-3") // as logging.Instance does at start
	reg := NewRegistry()
	want := `
# HELP ecomstream_build_info Constant 1, labelled with the version, revision and Go version of the binary and the replica's name (compose: ingester-2).
# TYPE ecomstream_build_info gauge
ecomstream_build_info{goversion="` + runtime.Version() + `",replica="ingester-3",revision="` + buildinfo.Revision() + `",version="dev"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ecomstream_build_info"); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg, "ecomstream_build_info")
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
