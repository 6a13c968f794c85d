package alarms

// BcryptPeak is the most bcrypt comparisons that ran at once for in's
// logins.
func BcryptPeak(in *Intake) int64 { return in.creds.peak.Load() }

// HoldBcryptWorkers keeps every bcrypt worker of in's logins busy until
// release is called.
func HoldBcryptWorkers(in *Intake) (release func()) {
	n := cap(in.creds.workers)
	for range n {
		in.creds.workers <- struct{}{}
	}
	return func() {
		for range n {
			<-in.creds.workers
		}
	}
}
