package s3

import "github.com/ecomstream/ecomstream/services/common/objstore"

// ReasonSuffix ends the key of the reason object Finish writes beside a failed object.
const ReasonSuffix = reasonSuffix

// Accepts tells whether key is an input object of a source on loc with these archive and
// failed prefixes: the rule the source lists by, for tools that measure its backlog
// (`ingester status`) without running one.
func Accepts(loc objstore.Location, archivePrefix, failedPrefix, key string) bool {
	s := &Source{o: Options{Location: loc, ArchivePrefix: archivePrefix, FailedPrefix: failedPrefix}}
	return s.accept(key)
}

// AsideKey is the key Finish moves the version etag of input key to under prefix (the
// archive or the failed prefix), so tools can tell which input key a failed object was.
func AsideKey(loc objstore.Location, prefix, key, etag string) string {
	s := &Source{o: Options{Location: loc}}
	return s.aside(prefix, key, etag)
}
