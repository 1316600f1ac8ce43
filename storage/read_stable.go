package storage

// ReadBelow is Read bounded by upper instead of the high watermark: the
// Region holds only whole batches whose base offset is below upper. The
// broker passes the last stable offset for read_committed fetches (Kafka
// bounds them by it); upper is a batch boundary there (the first offset
// of an open transaction, or the high watermark), so no batch is cut.
// offset at or past upper (but within the log end) gives an empty Region.
func (l *Log) ReadBelow(offset int64, maxBytes int, upper int64) (Region, error) {
	if l.dirState.isOffline() {
		return Region{BaseOffset: -1}, l.dirState.offlineErr()
	}
	if offset >= upper {
		l.mu.RLock()
		closed, start, end := l.closed, l.logStart, l.end
		l.mu.RUnlock()
		switch {
		case closed:
			return Region{BaseOffset: -1}, ErrClosed
		case offset < start || offset > end:
			return Region{BaseOffset: -1}, ErrOffsetOutOfRange
		}
		return Region{BaseOffset: -1}, nil
	}
	r, err := l.Read(offset, maxBytes)
	if err != nil || r.Len == 0 {
		return r, err
	}
	if r.BaseOffset >= upper {
		r.Release()
		return Region{BaseOffset: -1}, nil
	}
	// The first batch at or past upper, found with the sparse index (none
	// in the region: it is all below upper).
	cut, ok := r.seg.findOffset(upper, r.Pos+r.Len)
	if ok && cut < r.Pos+r.Len {
		r.Len = cut - r.Pos
	}
	return r, nil
}
