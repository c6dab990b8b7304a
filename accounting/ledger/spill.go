package ledger

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// The spill is a directory of append-only segment files, named by a
// zero-padded sequence number ("00000000000000000042.spill"). Each holds
// frames:
//
//	[4 bytes little-endian payload length][4 bytes CRC-32C of length+payload][payload]
//
// where the payload is one Record (codec.go: binary, or JSON in segments
// written before the binary form). A frame is valid only if its
// length is within maxFrame and its checksum matches; reading stops at the
// first invalid frame. A crash can leave a torn frame at the end of the
// segment being written; it is never appended to again (every process start
// opens a new segment), so the torn tail is simply where reading stops.

const (
	frameHeader  = 8
	maxFrame     = 1 << 20
	segmentExt   = ".spill"
	corruptExt   = ".corrupt"
	lockFileName = "LOCK"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends one frame holding payload to dst.
func appendFrame(dst, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	return sealFrame(append(dst, payload...), start)
}

// appendRecordFrame appends one frame holding r's binary form to dst,
// encoding in place. A normalised record's bounded strings keep the frame
// far below maxFrame.
func appendRecordFrame(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	return sealFrame(appendRecord(dst, r), start)
}

// sealFrame fills in the header of the frame at dst[start:], whose payload
// runs to the end of dst, and returns dst.
func sealFrame(dst []byte, start int) []byte {
	h := dst[start : start+frameHeader]
	binary.LittleEndian.PutUint32(h[:4], uint32(len(dst)-start-frameHeader))
	crc := crc32.Update(0, castagnoli, h[:4])
	crc = crc32.Update(crc, castagnoli, dst[start+frameHeader:])
	binary.LittleEndian.PutUint32(h[4:], crc)
	return dst
}

// Frame read errors. errTorn is the expected end of a segment cut short by
// a crash (a short or zero-filled frame); errCorrupt is a full frame whose
// checksum or length is wrong.
var (
	errTorn    = errors.New("torn frame")
	errCorrupt = errors.New("corrupt frame")
)

// readFrame reads one frame's payload from r into buf (reused when large
// enough). It returns io.EOF at a clean end.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, int, error) {
	var h [frameHeader]byte
	n, err := io.ReadFull(r, h[:])
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, errTorn
	}
	size := binary.LittleEndian.Uint32(h[:4])
	if size == 0 {
		return nil, 0, errTorn
	}
	if size > maxFrame {
		return nil, 0, errCorrupt
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	m, err := io.ReadFull(r, buf)
	if err != nil {
		return nil, 0, errTorn
	}
	crc := crc32.Update(0, castagnoli, h[:4])
	crc = crc32.Update(crc, castagnoli, buf)
	if crc != binary.LittleEndian.Uint32(h[4:]) {
		return nil, 0, errCorrupt
	}
	return buf, n + m, nil
}

// segment is one spill file.
type segment struct {
	seq  uint64
	path string
	// written is the length known to hold whole frames: advanced by the
	// writer after each batch's write (and its fsync, unless the ledger
	// syncs on an interval); for a segment found at start, the file's size
	// (reading stops at the first invalid frame anyway).
	written atomic.Int64
	// closed is set once nothing more will be appended.
	closed atomic.Bool
	// recovered marks a segment left by an earlier process.
	recovered bool
}

func segmentName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segmentExt) }

// listSegments returns the segments in dir in sequence order, as closed,
// recovered segments.
func listSegments(dir string) ([]*segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []*segment
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		s := &segment{seq: seq, path: filepath.Join(dir, name), recovered: true}
		s.written.Store(info.Size())
		s.closed.Store(true)
		segs = append(segs, s)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs, nil
}

// syncDir makes a file creation, rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
