package measure

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGX queries through a pool, reading every value as text (simple protocol).
type PGX struct{ Pool *pgxpool.Pool }

// Query implements Querier.
func (p PGX) Query(ctx context.Context, sql string) ([][]string, error) {
	rows, err := p.Pool.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		raw := rows.RawValues()
		r := make([]string, len(raw))
		for i, v := range raw {
			r[i] = string(v)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Command runs psql as a command (e.g. inside the compose stack's postgres container) with
// CSV output; Args are the command before the SQL, which is passed as the last argument.
type Command struct {
	Args []string // e.g. docker compose exec -T postgres psql -U u -d db -X -q --csv -t -c
	// Run executes the command; nil = os/exec. Tests replace it.
	Run func(ctx context.Context, env []string, args ...string) ([]byte, error)
}

// Query implements Querier.
func (c Command) Query(ctx context.Context, sql string) ([][]string, error) {
	if c.Run != nil {
		out, err := c.Run(ctx, nil, append(append([]string(nil), c.Args...), sql)...)
		if err != nil {
			return nil, err
		}
		r := csv.NewReader(bytes.NewReader(out))
		r.FieldsPerRecord = -1
		return r.ReadAll()
	}
	args := append(append([]string(nil), c.Args[1:]...), sql)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.Args[0], args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", c.Args[0], err, bytes.TrimSpace(stderr.Bytes()))
	}
	r := csv.NewReader(&stdout)
	r.FieldsPerRecord = -1
	return r.ReadAll()
}
