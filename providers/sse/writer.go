package sse

// The encoders below append to dst and return the extended slice, like
// strconv.AppendInt; they allocate only when dst lacks capacity.
//
// SSE cannot carry a CR or LF inside a field value: either ends the line.
// The encoders therefore never copy one into the output verbatim, so that
// untrusted upstream text cannot inject fields or events:
//   - in data and comment text, LF, CRLF and lone CR all start a new line
//     (so a Scanner reads CRLF and CR back as '\n');
//   - in an event name, CR and LF bytes are dropped.

// AppendData appends an unnamed event carrying data: one "data: <line>\n"
// per line of data, then the blank line "\n" that dispatches it. Empty data
// yields a single "data: \n" line, which a Scanner reads back as an event
// with empty Data.
func AppendData(dst, data []byte) []byte {
	dst = appendLines(dst, "data: ", data)
	return append(dst, '\n')
}

// AppendEvent appends an event named name carrying data: "event: <name>\n",
// the data lines as in AppendData, and the blank line "\n". An empty name
// gives the same output as AppendData.
func AppendEvent(dst, name, data []byte) []byte {
	if len(name) > 0 {
		dst = append(dst, "event: "...)
		for {
			i := indexLineEnd(name)
			if i < 0 {
				break
			}
			dst = append(dst, name[:i]...)
			name = name[i+1:]
		}
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	return AppendData(dst, data)
}

// AppendComment appends a comment, ": <text>\n", followed by a blank line,
// as sent for heartbeats. Multi-line text becomes one comment line per line.
// A Scanner ignores comments, and so does every SSE client.
func AppendComment(dst []byte, text string) []byte {
	for {
		i := indexLineEndString(text)
		if i < 0 {
			break
		}
		dst = append(dst, ": "...)
		dst = append(dst, text[:i]...)
		dst = append(dst, '\n')
		text = text[skipLineEnd(text[i], i, len(text) > i+1 && text[i+1] == '\n'):]
	}
	dst = append(dst, ": "...)
	dst = append(dst, text...)
	return append(dst, '\n', '\n')
}

// appendLines appends prefix+line+"\n" for every line of p; lines end in
// LF, CRLF or CR, and p always has at least one (possibly empty) line.
func appendLines(dst []byte, prefix string, p []byte) []byte {
	for {
		i := indexLineEnd(p)
		if i < 0 {
			break
		}
		dst = append(dst, prefix...)
		dst = append(dst, p[:i]...)
		dst = append(dst, '\n')
		p = p[skipLineEnd(p[i], i, len(p) > i+1 && p[i+1] == '\n'):]
	}
	dst = append(dst, prefix...)
	dst = append(dst, p...)
	return append(dst, '\n')
}

// skipLineEnd returns the index just past the line terminator that starts
// at i with byte c; lfNext reports whether the byte after it is LF.
func skipLineEnd(c byte, i int, lfNext bool) int {
	if c == '\r' && lfNext {
		return i + 2
	}
	return i + 1
}

// indexLineEndString is indexLineEnd for strings.
func indexLineEndString(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return i
		}
	}
	return -1
}
