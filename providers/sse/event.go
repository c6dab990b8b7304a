package sse

// Event is one server-sent event.
//
// The byte slices returned by Scanner alias the scanner's internal buffer and
// are valid only until the next call to Scanner.Next; copy what must outlive
// it.
type Event struct {
	// Name is the "event:" field; nil when the event had none (the SSE
	// default type "message"). An empty "event:" value also gives nil.
	Name []byte
	// Data is the concatenation of the event's "data:" lines, joined by '\n',
	// without the final newline. It is nil when the event had no data line
	// (a named event without data) and empty but non-nil when it had only
	// empty ones ("data:" alone).
	Data []byte
	// ID is the last "id:" field seen in the event, nil when none. An
	// "id:" with an empty value gives an empty, non-nil ID.
	ID []byte
}
