package document

import "fmt"

// ScanJSON checks untrusted JSON before encoding/json (or anything else) decodes it: at most
// maxSize bytes, nested at most MaxDepth levels deep, at most MaxEntries array elements and
// object members. Like Scan it allocates nothing and does not check the syntax, which the
// decoder does. The CloudEvent, deploy request, run request and Artifact Registry
// notification decoders call it.
func ScanJSON(data []byte, maxSize int) error {
	if len(data) > maxSize {
		return fmt.Errorf("JSON is %d bytes; the limit is %d", len(data), maxSize)
	}
	depth, entries := 0, 0
	inString, escaped := false, false
	for i, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > MaxDepth {
				return fmt.Errorf("JSON is nested more than %d levels deep at byte %d; the limit is %d", MaxDepth, i, MaxDepth)
			}
			entries++
		case ']', '}':
			depth = max(depth-1, 0)
		case ',':
			entries++
		}
		if entries > MaxEntries {
			return fmt.Errorf("JSON has more than %d array elements and object members at byte %d; the limit is %d", MaxEntries, i, MaxEntries)
		}
	}
	return nil
}
