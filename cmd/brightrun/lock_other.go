//go:build !unix

package main

import "os"

// tryLock is a no-op where flock is not available: the data directory is
// not guarded against a second server there.
func tryLock(*os.File) error { return nil }
