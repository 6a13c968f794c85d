// Package alarms takes alarm events from devices over MQTT and keeps them.
//
// The intake subscribes to (or, with the embedded broker, hooks into) the
// device topics, decodes each payload with the decoder configured for the
// device's model, removes duplicates by event id, and stores the event
// before the device's message is acknowledged, so that a crash loses
// nothing: the broker or the device sends it again. Payloads that do not
// decode are kept as rejected messages with their reason. A supervisor
// raises a trouble event for a device that falls silent.
//
// alarms declares the storage it needs (Store) and has two implementations
// that pass one conformance suite: Redis and an embedded bbolt file.
//
// alarms imports neither ingest nor viewer, nor hardware: decoders of device
// payloads are given to it.
package alarms
