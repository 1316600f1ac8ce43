package storage

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// procField reads a "Name:   123 kB" (or a plain count) line of
// /proc/<file>.
func procField(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+":") {
			continue
		}
		fields := strings.Fields(line[len(name)+1:])
		if len(fields) == 0 {
			return -1
		}
		v, _ := strconv.ParseInt(fields[0], 10, 64)
		return v
	}
	return -1
}

func openFDs() int64 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return int64(len(ents))
}

// BenchmarkUringIOScaling measures what one ring per log costs at 1,000
// logs: descriptors, process RSS, kernel slab and io-wq threads per ring,
// and the time to create one (LOG_BENCH_RINGS changes the count). The rings then each do one 4 KiB write +
// linked fdatasync, from 8 goroutines, to show how many kernel worker
// threads the per-log rings bring. System-wide figures (Slab) are noisy on
// a shared machine; read them as orders of magnitude.
//
//	go test -run '^$' -bench UringIOScaling -benchtime 1x ./storage/
func BenchmarkUringIOScaling(b *testing.B) {
	rings := envInt("LOG_BENCH_RINGS", 1000)
	if io, err := NewUringIO(); err != nil {
		b.Skip(err)
	} else {
		io.Close()
	}
	dir := b.TempDir()
	files := make([]*os.File, 8)
	for i := range files {
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	buf := make([]byte, 4096)
	for n := 0; n < b.N; n++ {
		fd0, rss0 := openFDs(), procField("/proc/self/status", "VmRSS")
		slab0 := procField("/proc/meminfo", "Slab") + procField("/proc/meminfo", "Percpu")
		thr0 := procField("/proc/self/status", "Threads")
		ios := make([]IO, rings)
		start := time.Now()
		for i := range ios {
			io, err := NewUringIO()
			if err != nil {
				b.Fatalf("ring %d: %v", i, err)
			}
			ios[i] = io
		}
		create := time.Since(start)
		fd1, rss1 := openFDs(), procField("/proc/self/status", "VmRSS")
		slab1 := procField("/proc/meminfo", "Slab") + procField("/proc/meminfo", "Percpu")
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < rings; i += 8 {
					if _, _, err := ios[i].Writev(files[w], [][]byte{buf}, 0, true); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		thr1, iouWorkers := threadsIncludingIOWorkers()
		for _, io := range ios {
			io.Close()
		}
		perRing := func(v int64) float64 { return float64(v) / float64(rings) }
		b.ReportMetric(perRing(create.Microseconds()), "us/NewUringIO")
		b.ReportMetric(perRing(fd1-fd0), "fds/ring")
		b.ReportMetric(perRing(rss1-rss0), "KiB-RSS/ring")
		b.ReportMetric(perRing(slab1-slab0), "KiB-slab+percpu/ring")
		b.ReportMetric(float64(thr1-thr0), "new-threads")
		b.ReportMetric(float64(iouWorkers), "iou-wrk-threads")
	}
}

// threadsIncludingIOWorkers counts /proc/self/task entries (Go's threads
// plus io-wq workers, which are threads of this process) and, of those,
// the iou-wrk-* workers.
func threadsIncludingIOWorkers() (all, iouWorkers int64) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1, -1
	}
	for _, e := range ents {
		comm, _ := os.ReadFile(filepath.Join("/proc/self/task", e.Name(), "comm"))
		if strings.HasPrefix(string(comm), "iou-wrk") {
			iouWorkers++
		}
	}
	return int64(len(ents)), iouWorkers
}
