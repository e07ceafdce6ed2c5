// Test program for experimental/go-tls/check.sh: Go's own crypto/tls, nothing else.
//
//	gotlsapp http N CONCURRENCY BODY_BYTES
//	    an HTTPS server and client (net/http, HTTP/1.1, keep-alive) in one process; N POSTs of
//	    BODY_BYTES over CONCURRENCY goroutines, each answered "reply /req/I\n".
//	gotlsapp stack N
//	    N tls.Conn.Read calls into a buffer on the reader's stack while GC shrinks stacks;
//	    reports how often the buffer moved during the Read.
//
// Both print "ready" and wait for a line on stdin (the probes attach meanwhile), then print
// "done OK/N ok" (stack: ", buffer moved during Read: M").
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

func certificate() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func waitForGo() {
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func runHTTP(n, concurrency, size int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "reply "+r.URL.Path+"\n")
		}),
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{certificate()}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
	}
	go srv.ServeTLS(ln, "", "")
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	waitForGo()
	var mu sync.Mutex
	next, ok := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				resp, err := client.Post(fmt.Sprintf("https://%s/req/%d", ln.Addr(), i), "text/plain",
					strings.NewReader(strings.Repeat("x", size)))
				if err != nil {
					fmt.Println("error", err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) == fmt.Sprintf("reply /req/%d\n", i) {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("done %d/%d ok\n", ok, n)
}

//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256])
}

var moved int

//go:noinline
func readOnStack(c *tls.Conn) string {
	var buf [64]byte
	before := uintptr(unsafe.Pointer(&buf[0]))
	n, err := c.Read(buf[:])
	if uintptr(unsafe.Pointer(&buf[0])) != before {
		moved++
	}
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func runStack(n int) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{certificate()}})
	if err != nil {
		panic(err)
	}
	go func() {
		s, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		for i := 0; i < n; i++ {
			time.Sleep(2 * time.Millisecond) // the reader is parked inside Read meanwhile
			fmt.Fprintf(s, "msg-%06d", i)
		}
	}()
	go func() {
		for {
			runtime.GC() // shrinks the stacks of parked goroutines
			time.Sleep(time.Millisecond)
		}
	}()
	waitForGo()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		panic(err)
	}
	ok := 0
	for i := 0; i < n; i++ {
		deep(40) // grow the stack so that GC has something to shrink
		if readOnStack(c) == fmt.Sprintf("msg-%06d", i) {
			ok++
		}
	}
	fmt.Printf("done %d/%d ok, buffer moved during Read: %d\n", ok, n, moved)
}

func main() {
	arg := func(i int) int {
		v, err := strconv.Atoi(os.Args[i])
		if err != nil {
			panic(err)
		}
		return v
	}
	switch os.Args[1] {
	case "http":
		runHTTP(arg(2), arg(3), arg(4))
	case "stack":
		runStack(arg(2))
	default:
		panic("mode: http or stack")
	}
}
