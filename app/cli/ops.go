package cli

import (
	"context"
	"fmt"
	"gatehouse/app"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealthcheck asks a running server whether it is healthy: exit 0 when
// the URL answers 200, 1 otherwise. It lets a container image without curl
// (distroless, scratch) have a HEALTHCHECK.
func cmdHealthcheck(ctx context.Context, c *CLI, args []string) error {
	fs := c.flags("healthcheck", "[--url URL] [--addr ADDR]", "Ask a running Gatehouse whether it is healthy (exit 0) or not (exit 1), for container health checks.")
	addr := fs.String("addr", app.DefaultConfig().Addr, "the server's --addr (the same GATEHOUSE_ADDR serve reads); the URL is http://ADDR/healthz")
	target := fs.String("url", "", "URL to ask instead, e.g. http://127.0.0.1:8080/readyz")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	u := *target
	if u == "" {
		host, port, err := net.SplitHostPort(*addr)
		if err != nil {
			return usageError{fmt.Sprintf("--addr %q is not host:port", *addr)}
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1" // serve listens on every interface; ask over loopback
		}
		u = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return usageError{"--url must start with http:// or https://"}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageError{fmt.Sprintf("--url %q is not a valid URL", u)}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s did not answer: %v", u, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", u, res.Status)
	}
	fmt.Fprintf(c.Stdout, "%s: ok\n", u)
	return nil
}
