package proxy

import "encoding/json"

// appendJSONMessage appends {"success":ok,"message":msg}.
func appendJSONMessage(dst []byte, ok bool, msg string) []byte {
	b, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}{ok, msg})
	return append(dst, b...)
}
