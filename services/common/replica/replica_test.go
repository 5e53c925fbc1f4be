package replica

import "testing"

func TestComposeContainerNamesBecomeServiceAndNumber(t *testing.T) {
	for ptr, want := range map[string]string{
		"ecomstream-ingester-2.ecomstream_default.":          "ingester-2",
		"ecomstream-ingester-12.ecomstream_default":          "ingester-12",
		"my-shop-loadgen-1.my-shop_default.":                 "loadgen-1",
		"ecomstream-postgres-exporter-1.ecomstream_backend.": "postgres-exporter-1",
		"buildhost.example.com.":                             "", // a host, not a compose container
		"buildhost.":                                         "",
		"other-ingester-2.ecomstream_default.":               "", // not this network's project
		"ecomstream-ingester.ecomstream_default.":            "", // no replica number
		"ecomstream-ingester-x2.ecomstream_default.":         "",
		"": "",
	} {
		if got := FromPTR(ptr); got != want {
			t.Errorf("FromPTR(%q) = %q, want %q", ptr, got, want)
		}
	}
}

func TestTheChosenNameIsTheReplicasName(t *testing.T) {
	Set("ingester-7")
	if got := Name(); got != "ingester-7" {
		t.Fatalf("Name() = %q after Set", got)
	}
}
