package config

import (
	"errors"
	"fmt"
	"reflect"
)

// Check collects what is wrong with a settings struct, each problem named by the
// setting's variable and flag ("INGESTER_WORKERS (--workers) must be 1 to 64"), so every
// service reports bad settings alike and a renamed setting cannot leave a stale name in
// a message. Fields are given by pointer: c.If(cfg.Workers < 1, &cfg.Workers, "...").
type Check struct {
	names map[fieldKey]string
	errs  []error
}

type fieldKey struct {
	addr uintptr
	typ  reflect.Type
}

// NewCheck starts the check of spec (the pointer given to Load).
func NewCheck(prefix string, spec any) *Check {
	c := &Check{names: map[fieldKey]string{}}
	for _, s := range Settings(prefix, spec) {
		name := s.Env
		if s.Flag != "" {
			name += " (--" + s.Flag + ")"
		}
		c.names[fieldKey{s.value.v.Addr().Pointer(), s.Type}] = name
	}
	return c
}

// Name is how messages name the setting field points to: its variable and its flag.
func (c *Check) Name(field any) string {
	v := reflect.ValueOf(field)
	if v.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("config: Check wants a pointer to a field, got %T", field))
	}
	name, ok := c.names[fieldKey{v.Pointer(), v.Type().Elem()}]
	if !ok {
		panic(fmt.Sprintf("config: %T is not a field of the settings being checked", field))
	}
	return name
}

// Errorf records a problem of the setting field points to.
func (c *Check) Errorf(field any, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s "+format, append([]any{c.Name(field)}, args...)...))
}

// If records the problem when bad holds.
func (c *Check) If(bad bool, field any, format string, args ...any) {
	if bad {
		c.Errorf(field, format, args...)
	}
}

// Err is every problem recorded, one a line, or nil.
func (c *Check) Err() error { return errors.Join(c.errs...) }
