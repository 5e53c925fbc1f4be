package s3

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/ecomstream/ecomstream/services/common/objstore"
)

// ConsumerName is the durable JetStream consumer the ingesters of loc share when none is
// named (INGESTER_NATS_CONSUMER empty): one per bucket prefix, by construction. One
// fixed name for every deployment made two deployments on different prefixes of one
// bucket (one subject) share a consumer: each took and acknowledged the other's
// notifications, whose objects then waited for a listing.
//
// The name is readable where an operator lists consumers (ecomstream-in-BUCKET-PREFIX)
// and unique through a hash of the exact bucket and prefix: the readable part keeps only
// what JetStream allows in a name (no '.', '*', '>', '/', '\', whitespace) and is cut
// short, so two locations may share it, never the hash.
func ConsumerName(loc objstore.Location) string {
	sum := sha256.Sum256([]byte(loc.Bucket + "\x00" + loc.Prefix))
	readable := strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, loc.Bucket+"-"+strings.TrimSuffix(loc.Prefix, "/")), "-_")
	const maxReadable = 48 // JetStream names are best kept short (they become file names)
	if len(readable) > maxReadable {
		readable = readable[:maxReadable]
	}
	return "ecomstream-in-" + readable + "-" + hex.EncodeToString(sum[:5])
}
