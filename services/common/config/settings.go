package config

import (
	"encoding"
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Setting is one field of a settings struct: its variable, its flag and how it parses.
// Settings lists them, for Load, for --help and for tools that check what a deployment
// sets (tests/compose) without parsing Go source.
type Setting struct {
	Env     string   // the variable --help names: DATABASE_URL, INGESTER_WORKERS
	Names   []string // every variable read, first found wins: INGESTER_DATABASE_URL, DATABASE_URL
	Flag    string   // without dashes; "" for a setting with no flag
	Desc    string
	Default string // the `default` tag, else the value the struct held
	Type    reflect.Type

	field reflect.StructField
	value fieldValue
}

// Set parses s into the field, as Load does with a variable or a flag.
func (s Setting) Set(v string) error { return s.value.Set(v) }

// Value is the field's current value, printed.
func (s Setting) Value() string { return s.value.String() }

// Settings lists the settings of spec (a pointer to a struct), the fields of embedded
// structs in their place, in declaration order.
func Settings(prefix string, spec any) []Setting {
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: settings of %T: want a pointer to a struct", spec))
	}
	return collect(prefix, v.Elem(), nil)
}

func collect(prefix string, v reflect.Value, out []Setting) []Setting {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = collect(prefix, v.Field(i), out)
			continue
		}
		key := f.Tag.Get("envconfig")
		if key == "" {
			key = strings.ToUpper(f.Name)
		}
		s := Setting{Env: prefix + "_" + key, Flag: f.Tag.Get("flag"), Desc: f.Tag.Get("desc"), Type: f.Type,
			field: f, value: fieldValue{v.Field(i)}}
		s.Names = []string{s.Env}
		if shared[key] {
			s.Env = key
			s.Names = append(s.Names, key)
		}
		if d, ok := f.Tag.Lookup("default"); ok {
			s.Default = d
		} else if !v.Field(i).IsZero() {
			s.Default = s.value.String()
		}
		out = append(out, s)
	}
	return out
}

// fieldValue adapts one struct field to flag.Value; the environment goes through it too.
type fieldValue struct{ v reflect.Value }

func (f fieldValue) String() string {
	if !f.v.IsValid() {
		return ""
	}
	return fmt.Sprint(f.v.Interface())
}

func (f fieldValue) Set(s string) error {
	switch fv := f.v.Addr().Interface().(type) {
	case flag.Value:
		return fv.Set(s)
	case encoding.TextUnmarshaler:
		return fv.UnmarshalText([]byte(s))
	case *time.Duration:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		*fv = d
		return nil
	}
	switch f.v.Kind() {
	case reflect.String:
		f.v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.v.Type().Bits())
		if err != nil {
			return numError(err)
		}
		f.v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, f.v.Type().Bits())
		if err != nil {
			return numError(err)
		}
		f.v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, f.v.Type().Bits())
		if err != nil {
			return numError(err)
		}
		f.v.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return numError(err)
		}
		f.v.SetBool(b)
	default:
		return fmt.Errorf("unsupported setting type %s", f.v.Type())
	}
	return nil
}

// numError drops strconv's "strconv.ParseInt: parsing "x": " prefix, which repeats the
// value the caller already names.
func numError(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}

// IsBoolFlag lets a bool flag be given without a value.
func (f fieldValue) IsBoolFlag() bool { return f.v.IsValid() && f.v.Kind() == reflect.Bool }

// parseDuration accepts Go durations ("10s") and bare seconds ("0.5"), because the
// report's commands give --sleep as fractional seconds.
func parseDuration(s string) (time.Duration, error) {
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(x * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// Seconds is a duration that prints as one; it reads bare fractional seconds like every
// duration setting, so GENERATOR_SLEEP=0.5 and --sleep 0.5 mean the same.
type Seconds time.Duration

// Set implements flag.Value.
func (s *Seconds) Set(v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	*s = Seconds(d)
	return nil
}

func (s Seconds) String() string { return time.Duration(s).String() }

// D returns the value as a time.Duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }
