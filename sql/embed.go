// Package sql carries the numbered schema migrations (NNNN_name.sql) into the binaries,
// so every service can bring the database to the schema it needs at start-up.
package sql

import "embed"

// Files holds every migration; they are applied in name order.
//
//go:embed *.sql
var Files embed.FS
