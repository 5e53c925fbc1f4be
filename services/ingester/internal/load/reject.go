package load

import (
	"errors"

	"github.com/ecomstream/ecomstream/services/common/compress"
	"github.com/ecomstream/ecomstream/services/common/event"
)

// WholeFileRejection returns the whole-file rejection that the error of a batch of one
// file calls for, or nil when the error says nothing against the file's content (a
// retry may succeed): PostgreSQL refused a value the contract let through
// (database_rejected), or the file's compressed stream cannot be decoded
// (corrupt_compressed, compression_window_too_large). Either way no retry changes the
// verdict, and the rows read before it were rolled back with the batch.
func WholeFileRejection(err error) *event.Rejection {
	var corrupt *compress.CorruptError
	switch {
	case errors.As(err, &corrupt):
		return &event.Rejection{Reason: corrupt.Reason, Message: err.Error()}
	case IsDataError(err):
		return &event.Rejection{Reason: ReasonDatabaseRejected, Message: err.Error()}
	}
	return nil
}
