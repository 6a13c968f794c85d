// Package alarms takes alarm events from devices over MQTT, keeps them, and
// dispatches patrol units to the incidents they make.
//
// The intake subscribes to (or, with the embedded broker, hooks into) the
// device topics, decodes each payload with the decoder configured for the
// device's model, removes duplicates by event id, and stores the event
// before the device's message is acknowledged, so that a crash loses
// nothing: the broker or the device sends it again. Payloads that do not
// decode are kept as rejected messages with their reason. A supervisor
// raises a trouble event for a device that falls silent.
//
// An Engine (built on the intake) turns stored events into incidents,
// routes each to the nearest free patrol unit of its area (widening up the
// jurisdiction tree), sends offers on the units' MQTT dispatch topics with
// deadlines, and follows every incident to its end with a timeline; see
// incident.go for a summary of its API.
//
// alarms declares the storage it needs (Store, IncidentStore) and has two
// implementations that pass one conformance suite: Redis and an embedded
// bbolt file.
//
// alarms imports neither ingest nor viewer, nor hardware: decoders of device
// payloads are given to it.
package alarms
