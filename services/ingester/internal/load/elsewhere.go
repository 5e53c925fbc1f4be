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
// committed_at index, and the database's clock (now()) with them: one row of nulls and
// the clock when there are none.
const committedElsewhereSQL = `
		SELECT now(), r.file_name, r.bytes, r.file_created_at, r.committed_at
		FROM (VALUES (1)) AS one LEFT JOIN LATERAL (
			SELECT file_name, bytes, file_created_at, committed_at FROM ingested_files
			WHERE committed_at > coalesce($1, now() - interval '1 minute') AND ingester_instance <> $2
			ORDER BY committed_at LIMIT $3) AS r ON true
		ORDER BY r.committed_at`

// CommittedElsewhere returns at most limit ledger rows that other instances (another
// Instance name) committed after since, oldest first; a zero since asks for the last
// minute's. It returns the database's clock when it read them too (asOf, the start of
// its transaction). The times are the database's, so the caller's next since is taken
// from those (the last row's At, or asOf), never from its own clock.
func (l *Loader) CommittedElsewhere(ctx context.Context, since time.Time, limit int) (rows []Committed, asOf time.Time, err error) {
	after := pgtype.Timestamptz{Time: since, Valid: !since.IsZero()}
	res, err := l.Pool.Query(ctx, committedElsewhereSQL, after, l.Instance, limit)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read the ledger's recent commits: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var (
			name         pgtype.Text
			size         pgtype.Int8
			modified, at pgtype.Timestamptz
		)
		if err := res.Scan(&asOf, &name, &size, &modified, &at); err != nil {
			return nil, time.Time{}, fmt.Errorf("read the ledger's recent commits: %w", err)
		}
		if name.Valid {
			rows = append(rows, Committed{Name: name.String, Size: size.Int64, Modified: modified.Time, At: at.Time})
		}
	}
	if err := res.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("read the ledger's recent commits: %w", err)
	}
	return rows, asOf, nil
}
