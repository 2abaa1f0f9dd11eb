package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// watchTree samples, every interval, the summed resident set of process
// pid and all its descendants (/proc/PID/statm, /proc/PID/task/*/children),
// until the returned stop is called; stop returns the largest sum seen, in
// KiB. Sampling can miss a peak shorter than the interval.
func watchTree(pid int, every time.Duration) (stop func() int64) {
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var most int64
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			most = max(most, treeRSS(pid))
			select {
			case <-done:
				peak <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-peak
	}
}

var pageKiB = int64(os.Getpagesize() / 1024)

// treeRSS is the resident set of pid and its descendants in KiB; processes
// that exit while it looks count as zero.
func treeRSS(pid int) int64 {
	var kib int64
	if statm, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid)); err == nil {
		if f := strings.Fields(string(statm)); len(f) > 1 {
			pages, _ := strconv.ParseInt(f[1], 10, 64)
			kib = pages * pageKiB
		}
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		children, _ := os.ReadFile(t)
		for _, c := range strings.Fields(string(children)) {
			if child, err := strconv.Atoi(c); err == nil {
				kib += treeRSS(child)
			}
		}
	}
	return kib
}
