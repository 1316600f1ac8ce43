package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve listens on addr (metrics.listener) and serves /metrics, plus
// /debug/pprof/ when pprofEnable (metrics.pprof.enable). addr "" disables the
// endpoint: Serve returns a no-op stop and no error. stop shuts the server
// down, waiting up to 2 s for in-flight scrapes; it is safe to call twice.
func (r *Registry) Serve(addr string, pprofEnable bool) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listener %s: %w", addr, err)
	}
	return r.ServeListener(ln, pprofEnable), nil
}

// ServeListener is Serve on a listener the caller opened (tests bind port 0
// and read the address back). It takes ownership of ln.
func (r *Registry) ServeListener(ln net.Listener, pprofEnable bool) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		// A failing collector must not take the whole scrape down.
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          r.reg, // exports promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	}))
	if pprofEnable {
		// Registered on our own mux, not http.DefaultServeMux, so pprof is
		// reachable only when the operator asked for it.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		fmt.Fprintln(w, "ringbroker: see /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: /debug/pprof/profile streams for ?seconds=N.
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && r.onServeError != nil {
			// The listener failed after start; the broker keeps serving Kafka.
			r.onServeError(fmt.Errorf("metrics endpoint %s stopped: %w", ln.Addr(), err))
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close() // scrapes still running after 2 s are cut off
			}
			<-done
		})
	}
}
