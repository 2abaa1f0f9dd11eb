package notify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycd/ferry/pkg/notify"
)

// fakeHook records the events it is fired with.
type fakeHook struct {
	name string
	err  error

	mu     sync.Mutex
	events []notify.Event
}

func (f *fakeHook) Name() string { return f.name }

func (f *fakeHook) Fire(_ context.Context, ev notify.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	return f.err
}

func (f *fakeHook) fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

func TestDispatcherOn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		on     []string
		result string
		fires  bool
	}{
		{"default fires on success", nil, notify.OnSuccess, true},
		{"default skips noop", nil, notify.OnNoop, false},
		{"default skips failure", nil, notify.OnFailure, false},
		{"noop when asked", []string{notify.OnNoop}, notify.OnNoop, true},
		{"only noop skips success", []string{notify.OnNoop}, notify.OnSuccess, false},
		{"failure and success", []string{notify.OnSuccess, notify.OnFailure}, notify.OnFailure, true},
		{"empty On fires nothing", []string{}, notify.OnSuccess, false},
		{"no result fires nothing", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &fakeHook{name: "fake"}
			d := &notify.Dispatcher{Hooks: []notify.Hook{h}, On: tc.on}
			ev := deployEvent()
			ev.Result = tc.result
			if err := d.Fire(t.Context(), ev); err != nil {
				t.Fatalf("Fire: %v", err)
			}
			if got := h.fired() == 1; got != tc.fires {
				t.Errorf("hook fired: %v, want %v", got, tc.fires)
			}
			if d.Fires(tc.result) != tc.fires {
				t.Errorf("Fires(%q) = %v, want %v", tc.result, !tc.fires, tc.fires)
			}
		})
	}
}

// TestDispatcherFailureDoesNotStopOthers fires a real webhook that answers
// 400 between two hooks that work.
func TestDispatcherFailureDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	srv := serve(t, &recorder{answer: statuses(400)})
	first, last := &fakeHook{name: "first"}, &fakeHook{name: "last"}
	bare := &fakeHook{name: "bare", err: errors.New("no route to argo")} // its error lacks its name
	failing := notify.Webhook(srv.URL+"/hook/SECRET", fast)
	var logs logBuffer
	d := &notify.Dispatcher{
		Hooks:  []notify.Hook{first, failing, bare, last},
		Logger: logs.logger(),
	}
	err := d.Fire(t.Context(), deployEvent())
	if err == nil {
		t.Fatal("Fire succeeded, want the webhook's and bare's failures")
	}
	for _, h := range []*fakeHook{first, bare, last} {
		if h.fired() != 1 {
			t.Errorf("hook %s fired %d times, want 1", h.name, h.fired())
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 {
		t.Fatalf("error %q: want one line per failed hook", err)
	}
	mustContain(t, "first failure", lines[0], failing.Name()+": HTTP 400")
	if want := "bare: no route to argo"; lines[1] != want {
		t.Errorf("second failure %q, want %q", lines[1], want)
	}
	mustNotContain(t, "error", err.Error(), "first", "last", "SECRET")
	mustContain(t, "log", logs.String(), `"msg":"hook failed"`, `"msg":"hook fired"`, `"hook":"last"`)
	mustNotContain(t, "log", logs.String(), "SECRET")
}

func TestDispatcherSetsTime(t *testing.T) {
	t.Parallel()
	h := &fakeHook{name: "fake"}
	d := &notify.Dispatcher{Hooks: []notify.Hook{h}}
	ev := deployEvent()
	ev.Time = time.Time{}
	before := time.Now()
	if err := d.Fire(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	got := h.events[0].Time
	if got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("Time = %v, want about now", got)
	}
	ev.Time = fixedTime
	if err := d.Fire(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ev, h.events[1]); diff != "" {
		t.Errorf("a set Time must pass unchanged (-want +got):\n%s", diff)
	}
}

// cancellingHook cancels the run as it fires, as a signal arriving during
// a hook does.
type cancellingHook struct {
	fakeHook
	cancel context.CancelFunc
}

func (c *cancellingHook) Fire(ctx context.Context, ev notify.Event) error {
	c.cancel()
	_ = c.fakeHook.Fire(ctx, ev)
	return ctx.Err()
}

// TestDispatcherStopsWhenCancelled: once ctx is done, the hooks not yet
// run are not started, and each says so.
func TestDispatcherStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	first := &cancellingHook{fakeHook: fakeHook{name: "first"}, cancel: cancel}
	second, third := &fakeHook{name: "second"}, &fakeHook{name: "third"}
	d := &notify.Dispatcher{Hooks: []notify.Hook{first, second, third}}
	err := d.Fire(ctx, deployEvent())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fire = %v, want context.Canceled", err)
	}
	if second.fired() != 0 || third.fired() != 0 {
		t.Errorf("hooks fired after the cancel: second %d, third %d", second.fired(), third.fired())
	}
	mustContain(t, "error", err.Error(), "second: not run: context canceled", "third: not run: context canceled")
}
