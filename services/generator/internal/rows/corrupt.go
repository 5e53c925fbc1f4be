package rows

import (
	"strconv"
	"time"

	"github.com/ecomstream/ecomstream/services/common/event"
)

// A corruption spoils exactly one thing of an otherwise valid row, so that a reader
// following the contract rejects it with one known reason code. The row stays
// well-formed CSV: a corrupt row must cost the reader one row, never the file.
type corruption struct {
	reason string
	// field is the column it spoils (an index into event.Columns), -1 for the row's shape.
	field int
	// value writes the spoiled field; variant alternates between ways of being wrong.
	value func(dst []byte, e *event.Event, variant int) []byte
}

var corruptions = []corruption{
	{event.ReasonBadEventID, event.ColEventID, func(dst []byte, e *event.Event, v int) []byte {
		dst = event.AppendUUID(dst, e.EventID)
		if v%2 == 0 {
			return dst[:len(dst)-1] // one character short
		}
		dst[len(dst)-1] = 'g' // not hex
		return dst
	}},
	{event.ReasonBadEventTime, event.ColEventTime, func(dst []byte, e *event.Event, v int) []byte {
		if v%2 == 0 { // a common non-RFC 3339 layout
			return e.EventTime.AppendFormat(dst, "02/01/2006 15:04:05")
		}
		return append(dst, "yesterday"...)
	}},
	{event.ReasonFutureEventTime, event.ColEventTime, func(dst []byte, e *event.Event, v int) []byte {
		return e.EventTime.Add(48*time.Hour).AppendFormat(dst, time.RFC3339Nano)
	}},
	{event.ReasonBadEventType, event.ColEventType, func(dst []byte, e *event.Event, v int) []byte {
		if v%2 == 0 {
			return append(dst, "wishlist"...)
		}
		return append(dst, "VIEW"...)
	}},
	{event.ReasonBadUserID, event.ColUserID, func(dst []byte, e *event.Event, v int) []byte {
		if v%2 == 0 {
			return append(dst, '0')
		}
		return strconv.AppendInt(append(dst, '-'), e.UserID, 10)
	}},
	{event.ReasonBadSessionID, event.ColSessionID, func(dst []byte, e *event.Event, v int) []byte {
		if v%2 == 0 {
			return dst // empty
		}
		return append(dst, "session-"...)
	}},
	{event.ReasonBadProductID, event.ColProductID, func(dst []byte, e *event.Event, v int) []byte {
		if v%2 == 0 {
			return append(dst, '0')
		}
		return append(strconv.AppendInt(dst, e.ProductID, 10), ".5"...)
	}},
	{event.ReasonBadCategory, event.ColCategory, func(dst []byte, e *event.Event, v int) []byte {
		return dst // empty
	}},
	{event.ReasonBadPrice, event.ColPrice, func(dst []byte, e *event.Event, v int) []byte {
		if v%2 == 0 { // three decimals
			return append(event.AppendPrice(dst, e.PriceCents), '5')
		}
		return event.AppendPrice(append(dst, '-'), e.PriceCents)
	}},
	{event.ReasonBadQuantity, event.ColQuantity, func(dst []byte, e *event.Event, v int) []byte {
		return append(dst, '0')
	}},
	{event.ReasonWrongFieldCount, -1, nil},
}

// Reasons lists the reason codes the invalid rows rotate over.
func Reasons() []string {
	out := make([]string, len(corruptions))
	for i, c := range corruptions {
		out[i] = c.reason
	}
	return out
}

// append writes e as a row with this corruption.
func (c *corruption) append(dst []byte, e *event.Event, variant int) []byte {
	fields := event.NumColumns
	if c.field < 0 { // wrong_field_count: one field missing or one too many
		fields = event.NumColumns - 1
		if variant%2 == 1 {
			fields = event.NumColumns + 1
		}
	}
	for col := 0; col < fields; col++ {
		if col > 0 {
			dst = append(dst, ',')
		}
		if col == c.field {
			dst = c.value(dst, e, variant)
			continue
		}
		dst = appendField(dst, e, col)
	}
	return append(dst, '\n')
}

// appendField writes one valid field of e, as event.AppendCSV would.
func appendField(dst []byte, e *event.Event, col int) []byte {
	switch col {
	case event.ColEventID:
		return event.AppendUUID(dst, e.EventID)
	case event.ColEventTime:
		return e.EventTime.AppendFormat(dst, time.RFC3339Nano)
	case event.ColEventType:
		return append(dst, e.EventType...)
	case event.ColUserID:
		return strconv.AppendInt(dst, e.UserID, 10)
	case event.ColSessionID:
		return event.AppendUUID(dst, e.SessionID)
	case event.ColProductID:
		return strconv.AppendInt(dst, e.ProductID, 10)
	case event.ColCategory:
		return event.AppendField(dst, e.Category)
	case event.ColPrice:
		return event.AppendPrice(dst, e.PriceCents)
	case event.ColQuantity:
		return strconv.AppendInt(dst, int64(e.Quantity), 10)
	}
	return append(dst, "extra"...) // the column too many of wrong_field_count
}
