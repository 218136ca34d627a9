// The load balancer's whole design in one file, in Go: minimal.cs line for line where the two
// languages allow (docs/minimal/README.md). A ticker, a health checker, one owner of the backend
// state that selects over two channels, and a handler per request that asks the owner for a
// backend over a reply channel and forwards with a plain http.Client.
//
//	go run minimal.go 8080 http://127.0.0.1:8000 http://127.0.0.1:8001
//
// Port 0 takes a free port; the line "listening on http://..." says which. Checked by hand with
// go vet and a run against two backends (Go 1.19); not compiled by this repository's CI.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

type health struct { // checker -> owner
	backend *url.URL
	up      bool
}

type pick struct{ reply chan *url.URL } // handler -> owner, with the reply channel inside

func main() {
	port := os.Args[1]
	var backends []*url.URL
	for _, a := range os.Args[2:] {
		u, err := url.Parse(a)
		if err != nil {
			panic(err)
		}
		backends = append(backends, u)
	}
	interval := time.Second

	// The channels, all buffered.
	ticks := make(chan time.Time, 1) // slot full: the sender drops the NEW tick (select + default)
	healthCh := make(chan health, 64)
	picks := make(chan pick, 1024)

	probeClient := &http.Client{Timeout: time.Second}
	forwardClient := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup

	// 1. Ticker: a tick now, then one every interval, into the one-slot channel.
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		defer close(ticks)
		ticks <- time.Now()
		for {
			select {
			case t := <-ticker.C:
				select {
				case ticks <- t:
				default:
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	// 2. Health checker: each tick, probe every backend at once and tell the owner each result.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range ticks {
			var round sync.WaitGroup
			for _, b := range backends {
				round.Add(1)
				go func(b *url.URL) {
					defer round.Done()
					healthCh <- health{b, probe(probeClient, b)}
				}(b)
			}
			round.Wait()
		}
		close(healthCh) // its only writer is done
	}()

	// 3. Owner: the only code that reads or writes up and next, so they need no lock.
	wg.Add(1)
	go func() {
		defer wg.Done()
		up := map[*url.URL]bool{} // takes traffic until a probe fails
		for _, b := range backends {
			up[b] = true
		}
		next := 0
		hc, pc := healthCh, picks // set to nil once closed: a nil channel is never ready
		for hc != nil || pc != nil {
			select { // picks a ready case at random; minimal.cs takes health first
			case h, ok := <-hc:
				if !ok {
					hc = nil
					continue
				}
				if up[h.backend] == h.up {
					continue
				}
				up[h.backend] = h.up
				fmt.Printf("backend %s is %s\n", h.backend, map[bool]string{true: "up", false: "down"}[h.up])
			case p, ok := <-pc:
				if !ok {
					pc = nil
					continue
				}
				var alive []*url.URL
				for _, b := range backends {
					if up[b] {
						alive = append(alive, b)
					}
				}
				if len(alive) == 0 {
					p.reply <- nil
					continue
				}
				p.reply <- alive[next%len(alive)]
				next++
			}
		}
	}()

	// 4. Handler, one per request: ask the owner (the reply channel travels inside the
	//    request), then forward.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply := make(chan *url.URL, 1)
		picks <- pick{reply}
		backend := <-reply
		if backend == nil {
			w.WriteHeader(http.StatusServiceUnavailable) // no backend is up
			return
		}
		target := backend.ResolveReference(&url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery})
		request, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		response, err := forwardClient.Do(request)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway) // down, and the owner does not know yet: the next probe tells it
			return
		}
		defer response.Body.Close()
		if ct := response.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(response.StatusCode)
		io.Copy(w, response.Body)
	})

	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		panic(err)
	}
	fmt.Printf("listening on http://%s\n", listener.Addr())
	server := &http.Server{Handler: handler}
	go server.Serve(listener)
	<-ctx.Done()                         // Ctrl+C or SIGTERM
	server.Shutdown(context.Background()) // stop listening, let requests finish
	close(picks)                         // no handler is left to ask
	wg.Wait()
}

func probe(client *http.Client, backend *url.URL) bool {
	response, err := client.Get(backend.ResolveReference(&url.URL{Path: "/healthcheck"}).String())
	if err != nil {
		return false
	}
	response.Body.Close()
	return response.StatusCode >= 200 && response.StatusCode < 300
}
