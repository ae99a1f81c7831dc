// A Go HTTPS server and client for api-guard's Go crypto/tls capture tests (stdlib only).
//
//	tlsapp server ADDR CERT KEY h1|h2
//	tlsapp client URL h1|h2 WORKERS ROUNDS SPEC...
//
// The server answers every request with a body that names it: "<method> <path> <n>\n"
// where n is the request body size, padded with '.' to the size given by ?size=N.
// The client runs WORKERS goroutines, each ROUNDS times through SPEC (METHOD:PATH:BODYSIZE,
// "{w}" and "{r}" in PATH replaced by worker and round), checks that every response names its
// own request, and prints one JSON line per exchange then a summary line. With
// TLSAPP_DELAY_MS set, the client waits that long first (so that an agent started before it
// has hooked its executable: discovery takes tens of milliseconds after exec).
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: tlsapp server|client ...")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(2)
}

func answer(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	body := fmt.Sprintf("%s %s %d\n", r.Method, r.URL.Path, n)
	if size, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && size > len(body) {
		body += strings.Repeat(".", size-len(body))
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	status := 200
	if strings.HasPrefix(r.URL.Path, "/missing") {
		status = 404
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func server(args []string) {
	if len(args) != 4 {
		fail("usage: tlsapp server ADDR CERT KEY h1|h2")
	}
	cert, err := tls.LoadX509KeyPair(args[1], args[2])
	if err != nil {
		fail(err.Error())
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		fail(err.Error())
	}
	srv := &http.Server{Handler: http.HandlerFunc(answer)}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	if args[3] == "h1" {
		// A non-nil empty map turns HTTP/2 off.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		srv.TLSConfig.NextProtos = []string{"http/1.1"}
	}
	fmt.Println("listening", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); err != nil {
		fail(err.Error())
	}
}

type result struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Sent   int    `json:"sent"`
	Status int    `json:"status"`
	Body   int    `json:"body"`
	Proto  string `json:"proto"`
}

func client(args []string) {
	if len(args) < 5 {
		fail("usage: tlsapp client URL h1|h2 WORKERS ROUNDS SPEC...")
	}
	if ms, err := strconv.Atoi(os.Getenv("TLSAPP_DELAY_MS")); err == nil {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	base, mode := args[0], args[1]
	workers, _ := strconv.Atoi(args[2])
	rounds, _ := strconv.Atoi(args[3])
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		MaxIdleConnsPerHost: workers,
	}
	if mode == "h1" {
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	} else {
		transport.ForceAttemptHTTP2 = true
	}
	httpClient := &http.Client{Transport: transport}
	var mu sync.Mutex
	var results []result
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				for _, spec := range args[4:] {
					res, err := one(httpClient, base, spec, w, r)
					mu.Lock()
					if err != nil {
						failures = append(failures, err.Error())
					} else {
						results = append(results, res)
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	out := json.NewEncoder(os.Stdout)
	for _, r := range results {
		out.Encode(r)
	}
	out.Encode(map[string]interface{}{"done": len(results), "failures": failures})
	if len(failures) > 0 {
		os.Exit(1)
	}
}

func one(c *http.Client, base, spec string, w, r int) (result, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 {
		return result{}, fmt.Errorf("bad spec %q", spec)
	}
	path := strings.NewReplacer("{w}", strconv.Itoa(w), "{r}", strconv.Itoa(r)).Replace(parts[1])
	size, _ := strconv.Atoi(parts[2])
	var body io.Reader
	if size > 0 {
		body = bytes.NewReader(bytes.Repeat([]byte("b"), size))
	}
	req, err := http.NewRequest(parts[0], base+path, body)
	if err != nil {
		return result{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return result{}, err
	}
	plain := path
	if i := strings.IndexByte(plain, '?'); i >= 0 {
		plain = plain[:i]
	}
	want := fmt.Sprintf("%s %s %d\n", parts[0], plain, size)
	if parts[0] != "HEAD" && !bytes.HasPrefix(got, []byte(want)) {
		return result{}, fmt.Errorf("%s %s: response %q does not name the request", parts[0], path, got)
	}
	return result{parts[0], path, size, resp.StatusCode, len(got), resp.Proto}, nil
}
