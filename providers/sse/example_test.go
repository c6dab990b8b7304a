package sse_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/aigw/aigw/providers/sse"
)

func ExampleScanner() {
	body := strings.NewReader("event: ping\ndata: {}\n\n: keepalive\n\ndata: {\"n\":1}\r\n\r\ndata: [DONE]")
	s := sse.NewScanner(body, 0)
	for s.Next() {
		ev := s.Event() // valid until the next call to Next
		fmt.Printf("name=%q data=%q\n", ev.Name, ev.Data)
	}
	if err := s.Err(); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// name="ping" data="{}"
	// name="" data="{\"n\":1}"
	// name="" data="[DONE]"
}

func ExampleAppendEvent() {
	var buf []byte
	buf = sse.AppendEvent(buf, []byte("message_delta"), []byte("line 1\nline 2"))
	buf = sse.AppendData(buf, []byte("[DONE]"))
	buf = sse.AppendComment(buf, "keepalive")
	os.Stdout.Write(buf)
	// Output:
	// event: message_delta
	// data: line 1
	// data: line 2
	//
	// data: [DONE]
	//
	// : keepalive
}
