package hardware

import (
	"fmt"
	"strings"

	"github.com/skywatch/skywatch/alarms"
)

// ContactID decodes Ademco Contact ID messages as alarm receivers print
// them: "ACCT MT QEEE GG ZZZ", for example "1234 18 1130 01 015", or the
// same 15 digits without spaces. A 16th digit (spaced or not) is the
// checksum and is verified: the digit values, with 0 counted as 10, must
// add up to a multiple of 15.
//
//   - ACCT: 4 hexadecimal digits (B-F occur; either case is accepted).
//   - MT: message type 18, or 98 (the faster variant).
//   - Q: qualifier: 1 new event or opening (disarm), 3 restore or closing
//     (arm), 6 a previously reported condition still present. Skywatch
//     takes 6 as a new event rather than rejecting it: a status report
//     may be the only news of a fire that is still burning, and the
//     intake's duplicate window absorbs repeats.
//   - EEE: event code, mapped to a class by contactIDCode.
//   - GG: group or partition, kept in Partition; ZZZ: zone, or user
//     number for openings and closings, kept in Zone, both as sent.
//
// A code with no known meaning is an error, so that the message lands in
// the rejected list where someone sees it, rather than being filed under
// a guessed class.
type ContactID struct{}

var _ alarms.Decoder = ContactID{}

// Decode implements alarms.Decoder; it returns exactly one event, without
// an ID: Contact ID carries none.
func (ContactID) Decode(payload []byte) ([]alarms.Event, error) {
	ev, err := decodeContactID(payload)
	if err != nil {
		return nil, fmt.Errorf("contact id: %w", err)
	}
	return []alarms.Event{ev}, nil
}

func decodeContactID(payload []byte) (alarms.Event, error) {
	if err := checkSize(payload); err != nil {
		return alarms.Event{}, err
	}
	digits, err := contactIDDigits(strings.TrimSpace(string(payload)))
	if err != nil {
		return alarms.Event{}, err
	}
	for i, c := range digits {
		if i >= 4 && i < 15 && (c < '0' || c > '9') {
			return alarms.Event{}, fmt.Errorf("%q: only the account and the checksum may hold hex digits", digits)
		}
	}
	if len(digits) == 16 {
		sum := 0
		for _, c := range digits {
			sum += contactIDDigitValue(c)
		}
		if sum%15 != 0 {
			return alarms.Event{}, fmt.Errorf("%q: bad checksum", digits)
		}
	}
	if mt := digits[4:6]; mt != "18" && mt != "98" {
		return alarms.Event{}, fmt.Errorf("message type %s: not 18 or 98", mt)
	}
	q, code, group, zone := digits[6], digits[7:10], digits[10:12], digits[12:15]

	info, ok := contactIDCode(code)
	if !ok {
		return alarms.Event{}, fmt.Errorf("unknown Contact ID event code %s", code)
	}
	ev := alarms.Event{
		Class:      info.class,
		Qualifier:  alarms.QualifierNew,
		Code:       code,
		Partition:  group,
		Zone:       zone,
		BatteryLow: info.batteryLow,
		Text:       info.text,
	}
	switch q {
	case '1':
	case '3':
		ev.Qualifier = alarms.QualifierRestore
	case '6':
		ev.Text += " (still present)"
	default:
		return alarms.Event{}, fmt.Errorf("qualifier %c: not 1, 3 or 6", q)
	}
	if info.openClose {
		// For openings and closings the qualifier says which: 1 (or a
		// status 6) is an opening, 3 a closing; either is a new event.
		ev.Qualifier = alarms.QualifierNew
		ev.Class, ev.Text = alarms.ClassDisarm, "Open"+info.text
		if q == '3' {
			ev.Class, ev.Text = alarms.ClassArm, "Close"+info.text
		}
		if q == '6' {
			ev.Text += " (still present)"
		}
	}
	return ev, nil
}

// contactIDDigits returns the 15 or 16 characters of a message, spaced as
// "ACCT MT QEEE GG ZZZ [C]" or not spaced at all.
func contactIDDigits(s string) (string, error) {
	if !strings.ContainsAny(s, " \t") {
		if len(s) != 15 && len(s) != 16 {
			return "", fmt.Errorf("%d characters: want 15, or 16 with the checksum", len(s))
		}
		return checkHex(strings.ToUpper(s))
	}
	fields := strings.Fields(s)
	if len(fields) != 5 && len(fields) != 6 {
		return "", fmt.Errorf("%d fields: want ACCT MT QEEE GG ZZZ and an optional checksum", len(fields))
	}
	for i, want := range []int{4, 2, 4, 2, 3, 1} {
		if i < len(fields) && len(fields[i]) != want {
			return "", fmt.Errorf("field %d %q: want %d digits", i+1, truncate(fields[i]), want)
		}
	}
	return checkHex(strings.ToUpper(strings.Join(fields, "")))
}

// checkHex accepts 0-9 and A-F (upper case by now).
func checkHex(s string) (string, error) {
	for _, c := range s {
		if contactIDDigitValue(c) == 0 {
			return "", fmt.Errorf("%q: not a hexadecimal digit", c)
		}
	}
	return s, nil
}

// contactIDDigitValue is a digit's value for the checksum: 0 counts as 10
// (it is sent as the DTMF tone A); 0 means not a digit.
func contactIDDigitValue(c rune) int {
	switch {
	case c == '0':
		return 10
	case c >= '1' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 0
}

// contactIDChecksum returns the checksum digit for 15 digits: the value
// that brings the sum to a multiple of 15, F when it already is one.
func contactIDChecksum(digits string) byte {
	sum := 0
	for _, c := range digits {
		sum += contactIDDigitValue(c)
	}
	v := 15 - sum%15
	return "0123456789ABCDEF"[v]
}
