//go:build !race

package ferry_test

// slow scales the time limits of tests that race the clock (see
// race_test.go).
const slow = 1
