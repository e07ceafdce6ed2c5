// A Go net/http service of the fidelity benchmark (goroutines on the runtime's thread pool), no
// tracing code. Built at run time by fidelity.py with the Debian Go toolchain.
//
// Usage: go_hop PORT DOWN_URL_PREFIX
// Listens on 0.0.0.0:PORT and prints "listening on port PORT". A request for /<hop>/<id> waits
// a random 0-20 ms (time.Sleep), GETs DOWN_URL_PREFIX + <id> with http.DefaultClient (pooled
// keep-alive connections), and answers 200 with that body after its own line (502 when the
// call failed or answered >= 400).
package main

import (
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_hop PORT DOWN_URL_PREFIX")
		os.Exit(2)
	}
	down := os.Args[2]
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = 64
	http.DefaultClient.Timeout = 30 * time.Second
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		if len(parts) != 3 {
			http.Error(w, "no route", http.StatusNotFound)
			return
		}
		line := fmt.Sprintf("%s %s\n", parts[1], parts[2])
		time.Sleep(time.Duration(rand.Int63n(int64(20 * time.Millisecond))))
		resp, err := http.Get(down + parts[2])
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "%scall failed: %v\n", line, err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		status := http.StatusOK
		if err != nil || resp.StatusCode >= 400 {
			status = http.StatusBadGateway
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s%s", line, body)
	})
	ln, err := net.Listen("tcp", "0.0.0.0:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on port %s\n", os.Args[1])
	fmt.Fprintln(os.Stderr, http.Serve(ln, nil))
	os.Exit(1)
}
