package hardware

import (
	"strconv"

	"github.com/skywatch/skywatch/alarms"
)

// contactIDInfo is what Skywatch makes of a Contact ID event code.
type contactIDInfo struct {
	class      alarms.Class
	text       string
	batteryLow bool // the code reports a low or failed battery
	openClose  bool // qualifier 1 is an opening (disarm), 3 a closing (arm); text follows "Open" or "Close"
}

// contactIDKnown names the codes that Skywatch knows one by one, following
// the Ademco Contact ID event code list. Codes that are not listed take the
// class of their range (contactIDRange) with its generic text.
func contactIDKnown(n int) (contactIDInfo, bool) {
	switch n {
	// Medical: no medical class, and a person needs help: panic.
	case 100:
		return contactIDInfo{class: alarms.ClassPanic, text: "Medical"}, true
	case 101:
		return contactIDInfo{class: alarms.ClassPanic, text: "Personal emergency"}, true
	case 102:
		return contactIDInfo{class: alarms.ClassPanic, text: "Fail to report in"}, true

	case 110:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire"}, true
	case 111:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - smoke"}, true
	case 112:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - combustion"}, true
	case 113:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - water flow"}, true
	case 114:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - heat"}, true
	case 115:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - pull station"}, true
	case 116:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - duct"}, true
	case 117:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - flame"}, true
	case 118:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire - near alarm"}, true

	case 120:
		return contactIDInfo{class: alarms.ClassPanic, text: "Panic"}, true
	case 121:
		return contactIDInfo{class: alarms.ClassPanic, text: "Duress"}, true
	case 122:
		return contactIDInfo{class: alarms.ClassPanic, text: "Panic - silent"}, true
	case 123:
		return contactIDInfo{class: alarms.ClassPanic, text: "Panic - audible"}, true
	case 124:
		return contactIDInfo{class: alarms.ClassPanic, text: "Duress - access granted"}, true
	case 125:
		return contactIDInfo{class: alarms.ClassPanic, text: "Duress - egress granted"}, true

	case 130:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary"}, true
	case 131:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - perimeter"}, true
	case 132:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - interior"}, true
	case 133:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - 24 hour"}, true
	case 134:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - entry/exit"}, true
	case 135:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - day/night"}, true
	case 136:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - outdoor"}, true
	case 137:
		return contactIDInfo{class: alarms.ClassTamper, text: "Tamper"}, true
	case 138:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - near alarm"}, true
	case 139:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - intrusion verified"}, true

	case 140:
		return contactIDInfo{class: alarms.ClassAlarm, text: "General alarm"}, true
	case 141:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Polling loop open"}, true
	case 142:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Polling loop short"}, true
	case 143:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Expansion module failure"}, true
	case 144:
		return contactIDInfo{class: alarms.ClassTamper, text: "Sensor tamper"}, true
	case 145:
		return contactIDInfo{class: alarms.ClassTamper, text: "Expansion module tamper"}, true
	case 146:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary - silent"}, true
	case 147:
		return contactIDInfo{class: alarms.ClassSupervision, text: "Sensor supervision failure"}, true
	case 150:
		return contactIDInfo{class: alarms.ClassAlarm, text: "24 hour non-burglary"}, true
	case 151:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Gas detected"}, true
	case 154:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Water leakage"}, true
	case 158:
		return contactIDInfo{class: alarms.ClassTrouble, text: "High temperature"}, true
	case 159:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Low temperature"}, true
	case 162:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Carbon monoxide detected"}, true

	case 300:
		return contactIDInfo{class: alarms.ClassTrouble, text: "System trouble"}, true
	case 301:
		return contactIDInfo{class: alarms.ClassTrouble, text: "AC loss"}, true
	case 302:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Low system battery", batteryLow: true}, true
	case 305:
		return contactIDInfo{class: alarms.ClassTrouble, text: "System reset"}, true
	case 309:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Battery test failure", batteryLow: true}, true
	case 311:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Battery missing or dead", batteryLow: true}, true
	case 321:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Bell trouble"}, true
	case 338:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Expansion module low battery", batteryLow: true}, true
	case 341:
		return contactIDInfo{class: alarms.ClassTamper, text: "Expansion module tamper"}, true
	case 344:
		return contactIDInfo{class: alarms.ClassTrouble, text: "RF receiver jam"}, true
	case 350:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Communication trouble"}, true
	case 351:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Telephone line fault"}, true
	case 354:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Failure to communicate"}, true
	case 355:
		return contactIDInfo{class: alarms.ClassSupervision, text: "Loss of radio supervision"}, true
	case 373:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Fire trouble"}, true
	case 380:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Sensor trouble"}, true
	case 381:
		return contactIDInfo{class: alarms.ClassSupervision, text: "Loss of supervision - RF"}, true
	case 382:
		return contactIDInfo{class: alarms.ClassSupervision, text: "Loss of supervision - RPM"}, true
	case 383:
		return contactIDInfo{class: alarms.ClassTamper, text: "Sensor tamper"}, true
	case 384:
		return contactIDInfo{class: alarms.ClassTrouble, text: "RF low battery", batteryLow: true}, true

	case 400:
		return contactIDInfo{openClose: true, text: ""}, true
	case 401:
		return contactIDInfo{openClose: true, text: " by user"}, true
	case 402:
		return contactIDInfo{openClose: true, text: " (group)"}, true
	case 403:
		return contactIDInfo{openClose: true, text: " (automatic)"}, true
	case 406:
		return contactIDInfo{openClose: true, text: " (cancel)"}, true
	case 407:
		return contactIDInfo{openClose: true, text: " (remote)"}, true
	case 408:
		return contactIDInfo{openClose: true, text: " (quick arm)"}, true
	case 409:
		return contactIDInfo{openClose: true, text: " (keyswitch)"}, true
	case 441:
		return contactIDInfo{openClose: true, text: " (armed stay)"}, true
	case 442:
		return contactIDInfo{openClose: true, text: " (keyswitch armed stay)"}, true

	case 601:
		return contactIDInfo{class: alarms.ClassTest, text: "Manual test"}, true
	case 602:
		return contactIDInfo{class: alarms.ClassTest, text: "Periodic test"}, true
	case 603:
		return contactIDInfo{class: alarms.ClassTest, text: "Periodic RF transmission"}, true
	case 604:
		return contactIDInfo{class: alarms.ClassTest, text: "Fire test"}, true
	case 607:
		return contactIDInfo{class: alarms.ClassTest, text: "Walk test"}, true
	case 608:
		return contactIDInfo{class: alarms.ClassTest, text: "Periodic test - trouble present"}, true
	}
	return contactIDInfo{}, false
}

// contactIDRange gives the class of an unlisted code by its range.
// Codes outside every range (access control, bypasses, logs, ...) are
// unknown to Skywatch.
func contactIDRange(n int) (contactIDInfo, bool) {
	switch {
	case n >= 100 && n <= 109:
		return contactIDInfo{class: alarms.ClassPanic, text: "Medical"}, true
	case n >= 110 && n <= 119:
		return contactIDInfo{class: alarms.ClassFire, text: "Fire"}, true
	case n >= 120 && n <= 129:
		return contactIDInfo{class: alarms.ClassPanic, text: "Panic"}, true
	case n >= 130 && n <= 139:
		return contactIDInfo{class: alarms.ClassAlarm, text: "Burglary"}, true
	case n >= 140 && n <= 169:
		return contactIDInfo{class: alarms.ClassAlarm, text: "General alarm"}, true
	case n >= 200 && n <= 299:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Fire supervisory"}, true
	case n >= 300 && n <= 399:
		return contactIDInfo{class: alarms.ClassTrouble, text: "Trouble"}, true
	case n >= 600 && n <= 609:
		return contactIDInfo{class: alarms.ClassTest, text: "Test"}, true
	}
	return contactIDInfo{}, false
}

// contactIDCode maps a 3-digit event code to its meaning.
func contactIDCode(code string) (contactIDInfo, bool) {
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 {
		return contactIDInfo{}, false
	}
	if info, ok := contactIDKnown(n); ok {
		return info, true
	}
	return contactIDRange(n)
}
