// Package e2e holds whole-system tests: a real server (internal/testserver)
// on SQLite and on PostgreSQL, real HTTP clients, and a real headless
// Chromium for the browser tests.
package e2e
