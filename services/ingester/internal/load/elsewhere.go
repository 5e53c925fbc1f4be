package load

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Committed is a ledger row another replica committed: the item's name, the size
// (bytes) and modification time (file_created_at) of the version it committed, and when.
type Committed struct {
	Name     string
	Size     int64
	Modified time.Time
	At       time.Time
}

// committedElsewhereSQL reads, oldest first, the ledger rows of other instances committed
// after $1 (with no $1: within the last minute, on the database's clock), through the
// committed_at index.
const committedElsewhereSQL = `
		SELECT file_name, bytes, file_created_at, committed_at FROM ingested_files
		WHERE committed_at > coalesce($1, now() - interval '1 minute') AND ingester_instance <> $2
		ORDER BY committed_at LIMIT $3`

// CommittedElsewhere returns at most limit ledger rows that other instances (another
// Instance name) committed after since, oldest first; a zero since asks for the last
// minute's. The times are the database's, so the caller's next since is the last row's
// At, never its own clock.
func (l *Loader) CommittedElsewhere(ctx context.Context, since time.Time, limit int) ([]Committed, error) {
	after := pgtype.Timestamptz{Time: since, Valid: !since.IsZero()}
	rows, err := l.Pool.Query(ctx, committedElsewhereSQL, after, l.Instance, limit)
	if err != nil {
		return nil, fmt.Errorf("read the ledger's recent commits: %w", err)
	}
	var out []Committed
	for rows.Next() {
		var c Committed
		if err := rows.Scan(&c.Name, &c.Size, &c.Modified, &c.At); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the ledger's recent commits: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the ledger's recent commits: %w", err)
	}
	return out, nil
}
