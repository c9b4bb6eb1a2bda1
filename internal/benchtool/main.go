// Command benchtool holds the helpers of scripts/bench-load.sh that are not
// Gatehouse itself; it is never part of the gatehouse binary.
//
//	benchtool bare ADDR FILE
//	    serve FILE's bytes (as text/html) at every path on ADDR: the bare
//	    net/http handler the allowed panel is compared with, doing no
//	    session, check or render.
//	benchtool headers ADDR FILE
//	    the same, plus what every Gatehouse response carries but a bare
//	    handler does not: the same security headers and request id, and
//	    the server's read, write and idle timeouts. The difference between
//	    the two is net/http's cost of those, not Gatehouse's.
//	benchtool json ADDR
//	    a small JSON API on ADDR (every path answers the same 80-odd
//	    bytes as application/json): the upstream scripts/bench-apps.sh
//	    puts behind nginx, Caddy and Gatehouse's app proxy.
//	benchtool proxy ADDR UPSTREAM
//	    net/http/httputil's ReverseProxy on ADDR in front of UPSTREAM, with
//	    the transport and buffer pool Gatehouse's app proxy uses and
//	    nothing else (no session, decision, headers or log): the floor
//	    for any Go proxy on this machine.
//	benchtool coldstart URL CMD [ARG...]
//	    start CMD and print the milliseconds until URL answers 200, then
//	    the process id, and leave CMD running (its output goes to our
//	    stderr). Polls every 0.5 ms.
//	benchtool mem PID
//	    print VmRSS and VmHWM of PID in MiB.
package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "bare", "headers":
		if len(os.Args) != 4 {
			usage()
		}
		err = bare(os.Args[2], os.Args[3], os.Args[1] == "headers")
	case "json":
		if len(os.Args) != 3 {
			usage()
		}
		err = jsonAPI(os.Args[2])
	case "proxy":
		if len(os.Args) != 4 {
			usage()
		}
		err = goProxy(os.Args[2], os.Args[3])
	case "coldstart":
		if len(os.Args) < 4 {
			usage()
		}
		err = coldstart(os.Args[2], os.Args[3:])
	case "mem":
		if len(os.Args) != 3 {
			usage()
		}
		err = mem(os.Args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool bare|headers ADDR FILE | json ADDR | proxy ADDR UPSTREAM | coldstart URL CMD [ARG...] | mem PID")
	os.Exit(2)
}

func bare(addr, file string, headers bool) error {
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headers { // as app/middleware.go's securityHeaders and logRequests set them
			h := w.Header()
			h["Content-Security-Policy"] = csp
			h["X-Content-Type-Options"] = []string{"nosniff"}
			h["X-Frame-Options"] = []string{"DENY"}
			h["Referrer-Policy"] = []string{"same-origin"}
			h["Cross-Origin-Opener-Policy"] = []string{"same-origin"}
			h["Cache-Control"] = []string{"no-store"}
			h["X-Request-Id"] = []string{"0123456789abcdef"}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if headers { // as app/server.go sets them
		srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 15*time.Second, 30*time.Second, 120*time.Second
	}
	return srv.ListenAndServe()
}

// jsonBody is what the JSON upstream answers: a dashboard's small reading.
var jsonBody = []byte(`{"region":"north","orders":1234,"revenue":56789.5,"updated":"2026-12-06T07:00:00Z"}` + "\n")

func jsonAPI(addr string) error {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jsonBody)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}

func goProxy(addr, upstream string) error {
	target, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	pool := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{ // as app/apps.New sets it
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		BufferPool: poolOf{pool},
	}
	srv := &http.Server{Addr: addr, Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}

type poolOf struct{ p *sync.Pool }

func (p poolOf) Get() []byte  { return *p.p.Get().(*[]byte) }
func (p poolOf) Put(b []byte) { p.p.Put(&b) }

// csp is Gatehouse's Content-Security-Policy (app/middleware.go).
var csp = []string{"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"}

func coldstart(url string, argv []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	for time.Since(start) < 30*time.Second {
		if res, err := client.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				fmt.Printf("%.1f %d\n", float64(time.Since(start).Microseconds())/1000, cmd.Process.Pid)
				return cmd.Process.Release()
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("%s did not answer 200 within 30s", url)
}

func mem(pid string) error {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return err
	}
	defer f.Close()
	var rss, hwm float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return err
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	fmt.Printf("%.1f %.1f\n", rss, hwm)
	return sc.Err()
}
