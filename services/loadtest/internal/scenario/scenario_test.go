package scenario

import (
	"testing"
	"time"
)

func TestPresetsAreTheReports(t *testing.T) {
	for name, want := range map[string]float64{"baseline": 37.5, "high-load": 700, "stress": 10000} {
		s, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.OfferedRate(); got != want {
			t.Errorf("%s offers %v rows/s, want %v", name, got, want)
		}
	}
	if _, err := Preset("nope"); err == nil {
		t.Error("an unknown scenario must be an error")
	}
}

func TestOverrides(t *testing.T) {
	s, _ := Preset("stress")
	s, err := s.Apply(Overrides{Duration: time.Minute, Generators: 4, Ingesters: 2, TriggerInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration != time.Minute || s.Generators != 4 || s.Ingesters != 2 || s.TriggerInterval != 10*time.Second || s.OfferedRate() != 40000 {
		t.Fatalf("%+v", s)
	}
	if _, err := s.Apply(Overrides{MinRecords: 10, MaxRecords: 5}); err == nil {
		t.Error("min > max must be refused")
	}
}

func TestRamp(t *testing.T) {
	s, _ := Preset("max")
	s, err := s.Apply(Overrides{Duration: 2 * time.Minute, StepDuration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ramp.MaxSteps != 6 || s.Duration != 2*time.Minute {
		t.Fatalf("%+v %+v", s, s.Ramp)
	}
	st := s.Ramp.StepFor(3, 10000, 2)
	if st.RowsPerFile != 1000 || st.Sleep != 200*time.Millisecond || st.Offered != 10000 {
		t.Fatalf("%+v", st)
	}
	// The preset's own ramp is not shared between callers.
	again, _ := Preset("max")
	if again.Ramp.StepDuration != 30*time.Second {
		t.Fatal("Apply changed the preset")
	}
}
