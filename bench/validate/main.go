// Command validate-bench measures the streaming dataset validator against
// decode-only baselines on generated brightrun-lora-v4 JSONL files, in one
// process: throughput (MB/s) and peak memory per phase. See README.md and
// run.sh.
package main

import (
	"bufio"
	"bytes"
	"context"
	stdjson "encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/brightrun/brightrun/internal/datasets/synth"
	"github.com/brightrun/brightrun/internal/datasets/validate"
)

func main() {
	sizes := flag.String("sizes", "100,500", "file sizes in MB (comma separated)")
	dir := flag.String("dir", "", "directory for the generated files (default: a temp dir, removed at the end)")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	d := *dir
	if d == "" {
		var err error
		if d, err = os.MkdirTemp("", "validate-bench-*"); err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
	}
	fmt.Printf("GOMAXPROCS=%d  %s/%s  %s  cpu: %s\n\n", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), cpuModel())
	fmt.Printf("%-8s %-34s %9s %9s %12s %12s %10s\n", "size", "phase", "seconds", "MB/s", "peak heap", "peak Go sys", "VmHWM")
	for _, s := range strings.Split(*sizes, ",") {
		mb, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fatal(err)
		}
		path := filepath.Join(d, fmt.Sprintf("synthetic-%dMB.v4.jsonl", mb))
		if _, err := os.Stat(path); err != nil {
			if err := generate(path, int64(mb)<<20); err != nil {
				fatal(err)
			}
		}
		st, _ := os.Stat(path)
		size := st.Size()
		label := fmt.Sprintf("%dMB", mb)
		base := measure(label, "decode-only encoding/json (any)", path, size, decodeStd)
		measure(label, "decode-only go-json-experiment (any)", path, size, decodeV2)
		measure(label, "syntax-only jsontext (per line)", path, size, syntaxOnly)
		val := measure(label, "validate.Validate", path, size, runValidate)
		fmt.Printf("%-8s ratio validate/decode-only(encoding/json) = %.2fx\n\n", label, val/base)
	}
}

func generate(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	start := time.Now()
	sum, err := synth.Write(f, synth.Options{Format: synth.V4JSONL, TargetBytes: size, Seed: 42})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	fmt.Printf("generated %s: %d bytes, %d conversations, %d pairs in %.1fs\n", filepath.Base(path), sum.Bytes, sum.Conversations, sum.Pairs, time.Since(start).Seconds())
	return err
}

// measure runs fn over the file and prints throughput and peak memory; it
// returns MB/s.
func measure(label, phase, path string, size int64, fn func(io.Reader) error) float64 {
	f, err := os.Open(path)
	if err != nil {
		fatal(err)
	}
	defer f.Close()
	runtime.GC()
	debug.FreeOSMemory()
	resetHWM()
	stop := startSampler()
	start := time.Now()
	if err := fn(f); err != nil {
		fatal(fmt.Errorf("%s: %w", phase, err))
	}
	el := time.Since(start).Seconds()
	heap, sys := stop()
	mbs := float64(size) / (1 << 20) / el
	fmt.Printf("%-8s %-34s %9.2f %9.1f %12s %12s %10s\n", label, phase, el, mbs, mib(heap), mib(sys), vmHWM())
	return mbs
}

func lines(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		line := frag
		if err == bufio.ErrBufferFull {
			buf = append(buf[:0], frag...)
			for err == bufio.ErrBufferFull {
				frag, err = br.ReadSlice('\n')
				buf = append(buf, frag...)
			}
			line = buf
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func decodeStd(r io.Reader) error {
	return lines(r, func(l []byte) error {
		var v any
		return stdjson.Unmarshal(l, &v)
	})
}

func decodeV2(r io.Reader) error {
	return lines(r, func(l []byte) error {
		var v any
		return jsonv2.Unmarshal(l, &v)
	})
}

func syntaxOnly(r io.Reader) error {
	d := jsontext.NewDecoder(bytes.NewBuffer(nil))
	return lines(r, func(l []byte) error {
		d.Reset(bytes.NewBuffer(l))
		_, err := d.ReadValue()
		return err
	})
}

func runValidate(r io.Reader) error {
	res, err := validate.Validate(context.Background(), r, validate.Options{})
	if err != nil {
		return err
	}
	if res.ErrorCount != 0 || !res.TrainingReady {
		return fmt.Errorf("unexpected validation errors: %d %+v", res.ErrorCount, res.Errors)
	}
	return nil
}

// startSampler polls runtime/metrics every 2 ms and returns a function that
// stops it and reports the peak heap-object bytes and the peak total
// memory mapped by the Go runtime.
func startSampler() func() (heap, sys uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	var mu sync.Mutex
	var peakHeap, peakSys uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	read := func() {
		metrics.Read(samples)
		mu.Lock()
		peakHeap = max(peakHeap, samples[0].Value.Uint64())
		peakSys = max(peakSys, samples[1].Value.Uint64())
		mu.Unlock()
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() (uint64, uint64) {
		read()
		close(done)
		wg.Wait()
		return peakHeap, peakSys
	}
}

// resetHWM resets the kernel's peak-RSS counter (VmHWM) for this process.
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return mib(kb << 10)
			}
		}
	}
	return "n/a"
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.Index(l, ":"); i >= 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return "unknown"
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "validate-bench:", err)
	os.Exit(1)
}
