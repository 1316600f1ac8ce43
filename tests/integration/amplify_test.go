//go:build linux

package integration

// Rows of TestHostileArrayCountAmplification for every API key the broker
// serves, and an exact peak-RSS reading for it.

import (
	"encoding/binary"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// peakRSS is the broker's peak RSS since the last resetPeakRSS (VmHWM):
// unlike sampling VmRSS, it cannot miss a short peak.
func (b *Broker) peakRSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.PID))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmHWM line %q", line)
			}
			kib, err := strconv.ParseInt(fields[0], 10, 64)
			return kib << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", b.PID)
}

// resetPeakRSS starts a new VmHWM window at the current RSS (clear_refs 5,
// Linux 4.0+).
func (b *Broker) resetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", b.PID), []byte("5"), 0)
}

// fillRequest sets every field of a kmsg request to a small non-zero value
// and every array to one element, so its encoding holds a count at every
// array position of its version.
func fillRequest(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.IsExported() && f.Name != "Version" && f.Name != "UnknownTags" {
				fillRequest(v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillRequest(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillRequest(v.Index(0))
	case reflect.String:
		v.SetString("x")
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Array:
		if v.Len() > 0 {
			fillRequest(v.Index(0))
		}
	}
}

// amplifyRow is one API key's worst array position: body(n) is the
// well-formed prefix up to that count, the count n, and zeros up to
// amplifyFrameBytes.
type amplifyRow struct {
	name    string
	key     int16
	version int16
	body    func(count int) wire
	rest    int // bytes after the count
}

// amplifyRowsFor builds one row per served API key, at its highest version
// kmsg knows. The position is the one where a count of a quarter of the
// remaining bytes costs kmsg the most heap in this process (any position
// that reads as a count of one in a filled request qualifies), so the row
// attacks the array whose elements are largest for their wire size.
func amplifyRowsFor(versions map[int16][2]int16) []amplifyRow {
	keys := make([]int, 0, len(versions))
	for k := range versions {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	var rows []amplifyRow
	for _, k := range keys {
		key := int16(k)
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		v := min(versions[key][1], req.MaxVersion())
		fillRequest(reflect.ValueOf(req).Elem())
		req.SetVersion(v)
		enc := req.AppendTo(nil)
		flexible := req.IsFlexible()
		row := amplifyRow{name: fmt.Sprintf("%s-v%d", strings.ToLower(kmsg.NameForKey(key)), v), key: key, version: v}
		var bestCost uint64
		for p := 0; p < len(enc); p++ {
			var put func(w wire, n int) wire
			switch {
			case !flexible && p+4 <= len(enc) && binary.BigEndian.Uint32(enc[p:]) == 1:
				put = func(w wire, n int) wire { return w.count(false, int64(n)) }
			case flexible && enc[p] == 2:
				put = func(w wire, n int) wire { return w.count(true, int64(n)) }
			default:
				continue
			}
			prefix := append(wire(nil), enc[:p]...)
			head := len(put(nil, amplifyFrameBytes))
			rest := amplifyFrameBytes - p - head
			body := func(n int) wire { return put(append(wire(nil), prefix...), n).zeros(rest) }
			// Probe with a small body in this process.
			const probe = 1 << 16
			local := put(append(wire(nil), prefix...), probe/4).zeros(probe)
			r := kmsg.RequestForKey(key)
			r.SetVersion(v)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_ = r.ReadFrom(local)
			runtime.ReadMemStats(&after)
			if cost := after.TotalAlloc - before.TotalAlloc; row.body == nil || cost > bestCost {
				bestCost, row.body, row.rest = cost, body, rest
			}
		}
		if row.body == nil { // no count-like position (none among our APIs today)
			row.rest = amplifyFrameBytes - len(enc)
			prefix := append(wire(nil), enc...)
			row.body = func(int) wire { return append(wire(nil), prefix...).zeros(row.rest) }
		}
		rows = append(rows, row)
	}
	return rows
}
