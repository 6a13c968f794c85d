package recorder

import (
	"errors"
	"fmt"
	"time"
)

// Record modes of a camera (cameras[].record).
const (
	RecordOff    = "off"    // neither recorded nor kept for alarms (default)
	RecordAlways = "always" // recorded continuously, and kept for alarms
	RecordAlarms = "alarms" // only the pre-alarm ring and evidence clips
)

// Streams a camera can be recorded from (cameras[].record_stream).
const (
	StreamMain = "main" // default
	StreamSub  = "sub"
)

// Defaults of the recordings and evidence sections.
const (
	DefaultSegment    = 60 * time.Second
	DefaultKeep       = 30 * 24 * time.Hour
	DefaultMinFree    = Size(1 << 30)
	DefaultMaxExport  = 30 * time.Minute
	DefaultPreAlarm   = 30 * time.Second
	DefaultPostAlarm  = 60 * time.Second
	DefaultClipMax    = 10 * time.Minute
	DefaultRingBytes  = Size(32 << 20)
	DefaultEvidence   = 365 * 24 * time.Hour
	DefaultClipCamera = 8
	DefaultOpenClips  = 16
)

// Config is the recordings section of the configuration, with the
// evidence section and each camera's record settings mapped in by the
// caller. Zero values take the defaults.
type Config struct {
	// Path is the directory that holds segments and evidence. Required
	// when any camera records.
	Path string `yaml:"path"`
	// Node is this node's id when several nodes of a cluster share Path
	// (a shared file system); "" for one node. It is not in the config
	// file: the caller sets it from cluster.node. A node then repairs only
	// its own files left open by a crash, leaves the files other nodes are
	// writing alone, opens evidence clips only of cameras it pulls, and
	// reads the clips other nodes wrote.
	Node string `yaml:"-"`
	// Segment is the target length of a segment; a segment ends at the
	// first keyframe after it. Default 60 s.
	Segment time.Duration `yaml:"segment"`
	// Keep deletes segments older than this. Default 30 days.
	Keep time.Duration `yaml:"keep"`
	// MaxBytes caps segments and evidence together; 0 means no cap other
	// than MinFree. When it is reached the oldest segments go first, across
	// cameras; evidence is never deleted before its time.
	MaxBytes Size `yaml:"max_bytes"`
	// MinFree is the space always left free on the disk. Default 1 GiB.
	MinFree Size `yaml:"min_free"`
	// MaxExport is the longest span one export may ask for. Default 30 min.
	MaxExport time.Duration `yaml:"max_export"`
	// PreAlarm is how much video before an alarm each recording camera
	// keeps in memory and puts at the head of an evidence clip. Default
	// 30 s (0 means the default; 1 s is the least).
	PreAlarm time.Duration `yaml:"pre_alarm"`
	// PreAlarmMaxBytes bounds one camera's pre-alarm ring whatever the
	// camera's bitrate. Default 32 MiB.
	PreAlarmMaxBytes Size `yaml:"pre_alarm_max_bytes"`
	// PostAlarm is how long a clip goes on after the incident's latest
	// event. Default 60 s.
	PostAlarm time.Duration `yaml:"post_alarm"`
	// ClipMax bounds one clip, pre-alarm included, however long the
	// incident keeps getting events. Default 10 min.
	ClipMax time.Duration `yaml:"clip_max"`

	// Evidence is the evidence section.
	Evidence EvidenceConfig `yaml:"-"`
	// Cameras lists the cameras' record settings, from cameras[]. Cameras
	// not listed are not recorded.
	Cameras []CameraConfig `yaml:"-"`
}

// EvidenceConfig is the evidence section of the configuration.
type EvidenceConfig struct {
	// Keep is how long a clip is kept after its incident ended (closed,
	// resolved or cancelled). Default 365 days.
	Keep time.Duration `yaml:"keep"`
	// CamerasPerIncident bounds the clips of one incident: its first linked
	// cameras that record. Default 8.
	CamerasPerIncident int `yaml:"cameras_per_incident"`
	// MaxOpenClips bounds the clips one camera writes at once (one per
	// incident that links it): an alarm storm around one camera must not
	// multiply its bitrate on the disk without end. Default 16.
	MaxOpenClips int `yaml:"max_open_clips"`
}

// CameraConfig is one camera's record settings.
type CameraConfig struct {
	ID string
	// Record is RecordOff, RecordAlways or RecordAlarms.
	Record string
	// Stream is StreamMain or StreamSub.
	Stream string
}

// records tells whether the camera keeps anything.
func (c CameraConfig) records() bool { return c.Record == RecordAlways || c.Record == RecordAlarms }

// Recording tells whether any camera records.
func (c *Config) Recording() bool {
	for _, cam := range c.Cameras {
		if cam.records() {
			return true
		}
	}
	return false
}

// SetDefaults fills zero values with the defaults.
func (c *Config) SetDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Segment, DefaultSegment)
	def(&c.Keep, DefaultKeep)
	def(&c.MaxExport, DefaultMaxExport)
	def(&c.PreAlarm, DefaultPreAlarm)
	def(&c.PostAlarm, DefaultPostAlarm)
	def(&c.ClipMax, DefaultClipMax)
	def(&c.Evidence.Keep, DefaultEvidence)
	if c.MinFree == 0 {
		c.MinFree = DefaultMinFree
	}
	if c.PreAlarmMaxBytes == 0 {
		c.PreAlarmMaxBytes = DefaultRingBytes
	}
	if c.Evidence.CamerasPerIncident == 0 {
		c.Evidence.CamerasPerIncident = DefaultClipCamera
	}
	if c.Evidence.MaxOpenClips == 0 {
		c.Evidence.MaxOpenClips = DefaultOpenClips
	}
	for i := range c.Cameras {
		if c.Cameras[i].Record == "" {
			c.Cameras[i].Record = RecordOff
		}
		if c.Cameras[i].Stream == "" {
			c.Cameras[i].Stream = StreamMain
		}
	}
}

// Validate checks the configuration after SetDefaults; every message names
// its key. It does not touch the disk (see Check).
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Recording() && c.Path == "" {
		add("recordings.path", "required when a camera records")
	}
	if c.Segment < time.Second || c.Segment > time.Hour {
		add("recordings.segment", "%s is out of range (1s to 1h)", c.Segment)
	}
	if c.Keep < time.Hour {
		add("recordings.keep", "%s is shorter than 1h", c.Keep)
	}
	if c.MaxBytes < 0 || (c.MaxBytes > 0 && c.MaxBytes < 64<<20) {
		add("recordings.max_bytes", "%s is less than 64MiB", c.MaxBytes)
	}
	if c.MinFree < 0 {
		add("recordings.min_free", "must not be negative")
	}
	if c.MaxExport < time.Second || c.MaxExport > 24*time.Hour {
		add("recordings.max_export", "%s is out of range (1s to 24h)", c.MaxExport)
	}
	// 0 took the default in SetDefaults: the ring cannot be turned off, only
	// shortened (a camera recorded always keeps at least its last GOP).
	if c.PreAlarm < time.Second || c.PreAlarm > 5*time.Minute {
		add("recordings.pre_alarm", "%s is out of range (1s to 5m)", c.PreAlarm)
	}
	if c.PreAlarmMaxBytes < 1<<20 || c.PreAlarmMaxBytes > 1<<30 {
		add("recordings.pre_alarm_max_bytes", "%s is out of range (1MiB to 1GiB)", c.PreAlarmMaxBytes)
	}
	if c.PostAlarm < time.Second || c.PostAlarm > 30*time.Minute {
		add("recordings.post_alarm", "%s is out of range (1s to 30m)", c.PostAlarm)
	}
	if c.ClipMax < c.PreAlarm+c.PostAlarm || c.ClipMax > 2*time.Hour {
		add("recordings.clip_max", "%s must be at least pre_alarm + post_alarm and at most 2h", c.ClipMax)
	}
	if c.Evidence.Keep < 24*time.Hour {
		add("evidence.keep", "%s is shorter than 24h", c.Evidence.Keep)
	}
	if c.Evidence.CamerasPerIncident < 1 || c.Evidence.CamerasPerIncident > 64 {
		add("evidence.cameras_per_incident", "%d is out of range (1 to 64)", c.Evidence.CamerasPerIncident)
	}
	if c.Evidence.MaxOpenClips < 1 || c.Evidence.MaxOpenClips > 1024 {
		add("evidence.max_open_clips", "%d is out of range (1 to 1024)", c.Evidence.MaxOpenClips)
	}
	for _, cam := range c.Cameras {
		switch cam.Record {
		case RecordOff, RecordAlways, RecordAlarms:
		default:
			add("cameras["+cam.ID+"].record", "%q is not off, always or alarms", cam.Record)
		}
		switch cam.Stream {
		case StreamMain, StreamSub:
		default:
			add("cameras["+cam.ID+"].record_stream", "%q is not main or sub", cam.Stream)
		}
	}
	return errors.Join(errs...)
}
