// Package sql carries the numbered schema migrations (NNNN_name.sql) into the binaries:
// `ingester migrate` (compose's one-shot job) applies them, and so does every service at
// start-up when it runs as a plain process.
//
// Since 0005_roles.sql the schema belongs to the NOLOGIN role ecomstream_migrator: a
// migration after it begins with `SET LOCAL ROLE ecomstream_migrator;` (the runner is an
// administrator, who may become it), so what it makes has that owner, and grants to the
// services' roles what they need of a new table (default privileges give them SELECT
// only). services/common/db's roles tests fail on an object with another owner.
package sql

import "embed"

// Files holds every migration; they are applied in name order.
//
//go:embed *.sql
var Files embed.FS
