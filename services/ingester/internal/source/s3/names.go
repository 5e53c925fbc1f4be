package s3

import "github.com/ecomstream/ecomstream/services/common/objstore"

// ReasonSuffix ends the key of the reason object Finish writes beside a failed object.
const ReasonSuffix = reasonSuffix

// AsideKey is the key Finish moves the version etag of input key to under prefix (the
// archive or the failed prefix), so tools can tell which input key a failed object was.
func AsideKey(loc objstore.Location, prefix, key, etag string) string {
	s := &Source{o: Options{Location: loc}}
	return s.aside(prefix, key, etag)
}
