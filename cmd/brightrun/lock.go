package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the name of the server's lock in the data directory.
const lockFile = "brightrun.lock"

// errLocked is returned by tryLock when another process holds the lock.
var errLocked = errors.New("locked")

// dataDirLock is the held lock; Close releases it.
type dataDirLock struct{ f *os.File }

// Close releases the lock (the pid stays in the file; it is only read when
// the lock is held by someone).
func (l *dataDirLock) Close() error { return l.f.Close() }

// lockDataDir takes an exclusive, non-blocking lock on DATA_DIR/brightrun.lock
// so that a second server on the same data directory (same SQLite file, same
// local storage) refuses to start. The operating system releases the lock
// when the process ends, however it ends, so a crash leaves no stale lock.
func lockDataDir(dir string) (*dataDirLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("BRIGHTRUN_DATA_DIR: cannot create %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("BRIGHTRUN_DATA_DIR: cannot open the lock file %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errLocked) {
			who := "another process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				who = "pid " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("another brightrun server is using %s (%s); stop it or give this one its own --data-dir", dir, who)
		}
		return nil, fmt.Errorf("BRIGHTRUN_DATA_DIR: cannot lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataDirLock{f: f}, nil
}
