//go:build race

package ferry_test

// slow scales the time limits of tests that race the clock: the race
// detector makes ferry several times slower.
const slow = 4
