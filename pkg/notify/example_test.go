package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/ferrycd/ferry/pkg/notify"
)

func ExampleDispatcher() {
	// A webhook receiver on 127.0.0.1 that fails once, then accepts.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ev notify.Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("received %s %s: %s commit %s\n", ev.Action, ev.Result, ev.Env, ev.Commit)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	d := &notify.Dispatcher{
		Hooks: []notify.Hook{
			notify.Webhook(srv.URL+"/hooks/deploy/s3cr3t", notify.WithBackoff(10*time.Millisecond)),
		},
		// On defaults to success only.
	}
	ev := notify.Event{Action: "deploy", Result: notify.OnSuccess, Env: "candidate", App: "hello", Commit: "5c03fa22"}
	if err := d.Fire(context.Background(), ev); err != nil {
		fmt.Println(err)
	}

	ev.Result = notify.OnNoop // not fired: nothing changed
	if err := d.Fire(context.Background(), ev); err != nil {
		fmt.Println(err)
	}
	fmt.Println("requests:", calls.Load())
	// Output:
	// received deploy success: candidate commit 5c03fa22
	// requests: 2
}

func ExampleWebhook() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown token", http.StatusUnauthorized)
	}))
	defer srv.Close()

	// The URL's path is a secret: names and errors show the host only.
	h := notify.Webhook(srv.URL + "/hooks/deploy/s3cr3t")
	err := h.Fire(context.Background(), notify.Event{Action: "deploy", Result: notify.OnSuccess, Env: "candidate"})
	fmt.Println(err.Error() == h.Name()+": HTTP 401 Unauthorized: unknown token (attempt 1 of 3, not retried)")
	// Output:
	// true
}
