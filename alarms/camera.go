package alarms

// CameraSite is where a camera is, as the engine needs it to link cameras
// to incidents. cmd builds the list from the camera config: alarms does not
// import ingest. The camera's live state is joined in by the viewer.
type CameraSite struct {
	ID   string  `json:"id"`
	Area string  `json:"area,omitempty"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
}

// IncidentCamera is a camera linked to an incident.
type IncidentCamera struct {
	ID string `json:"id"`
	// Linked is true for a camera configured on the device (cameras:),
	// false for one found by distance.
	Linked    bool    `json:"linked,omitempty"`
	DistanceM float64 `json:"distance_m"`
}
