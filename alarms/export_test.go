package alarms

// BcryptPeak is the most bcrypt comparisons that ran at once for in's
// logins.
func BcryptPeak(in *Intake) int64 { return in.creds.peak.Load() }
