package load

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	input "github.com/ecomstream/ecomstream/services/ingester/internal/source"
)

// fileSHA256 hashes an item (only needed when its name is already in the ledger) and
// returns the version it read.
func fileSHA256(ctx context.Context, open Opener, it input.Item) (string, input.Version, error) {
	r, v, err := open.Open(ctx, it)
	if err != nil {
		return "", input.Version{}, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", input.Version{}, fmt.Errorf("read %s: %w", it.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), v, nil
}
