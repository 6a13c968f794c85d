package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/hardware"

	"github.com/skywatch/skywatch/internal/testredis"
)

// BenchmarkAlarmToOffer measures how long an alarm takes to reach a patrol
// unit: from a device's QoS 1 publish of a panic to the offer arriving at
// the nearest free unit's MQTT subscription, through the embedded broker,
// the intake, the store and the incident engine. 300 units report their
// moving positions every second; each accepts its offer and clears the
// incident at once, so that it is free again. Alarms come from 500
// devices at a fixed rate for 20 s.
//
//	go test -run '^$' -bench AlarmToOffer -benchtime 1x ./e2e/
//
// With SKYWATCH_TEST_REDIS set, the Redis store is measured too.
func BenchmarkAlarmToOffer(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) alarmStore
	}{{"bolt", openBenchBolt}}
	if os.Getenv("SKYWATCH_TEST_REDIS") != "" {
		stores = append(stores, struct {
			name string
			open func(b *testing.B) alarmStore
		}{"redis", openBenchRedis})
	}
	for _, st := range stores {
		for _, rate := range []int{10, 200} {
			b.Run(fmt.Sprintf("%s/%d-per-s", st.name, rate), func(b *testing.B) {
				for range b.N {
					runDispatchBench(b, st.open(b), rate, 20*time.Second)
				}
			})
		}
	}
}

type alarmStore interface {
	alarms.Store
	alarms.IncidentStore
}

func openBenchBolt(b *testing.B) alarmStore {
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "alarms.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func openBenchRedis(b *testing.B) alarmStore {
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	prefix := fmt.Sprintf("skywatch-bench-%x:", rand.Uint64())
	s, err := redisstore.Open(context.Background(), redisstore.Config{URL: url, KeyPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		testredis.DeleteKeys(b, url, prefix)
	})
	return s
}

const (
	benchUnits     = 300
	benchDevices   = 500
	benchVillages  = 10
	benchSpacingM  = 4000.0
	benchOriginLat = 30.0
	benchOriginLon = 120.0
)

func benchPlace(village int, jitter *rand.Rand) (lat, lon float64) {
	north := float64(village/4)*benchSpacingM + (jitter.Float64()-0.5)*2000
	east := float64(village%4)*benchSpacingM + (jitter.Float64()-0.5)*2000
	return benchOriginLat + north/111320, benchOriginLon + east/(111320*0.866)
}

func runDispatchBench(b *testing.B, store alarmStore, rate int, flood time.Duration) {
	rng := rand.New(rand.NewPCG(1, uint64(rate)))
	cfg := alarms.Config{MQTT: alarms.MQTTConfig{Address: "127.0.0.1:0"}}
	cfg.Areas = append(cfg.Areas, alarms.AreaConfig{ID: "county", Kind: alarms.AreaCounty})
	for v := range benchVillages {
		cfg.Areas = append(cfg.Areas, alarms.AreaConfig{ID: fmt.Sprintf("v%02d", v), Parent: "county", Kind: alarms.AreaVillage})
	}
	for i := range benchDevices {
		v := i % benchVillages
		lat, lon := benchPlace(v, rng)
		cfg.Devices = append(cfg.Devices, alarms.DeviceConfig{
			ID: fmt.Sprintf("d%04d", i), Area: fmt.Sprintf("v%02d", v), Lat: lat, Lon: lon, Password: "pw",
		})
	}
	for i := range benchUnits {
		v := i % benchVillages
		lat, lon := benchPlace(v, rng)
		cfg.Units = append(cfg.Units, alarms.UnitConfig{
			ID: fmt.Sprintf("u%03d", i), Area: fmt.Sprintf("v%02d", v), Lat: lat, Lon: lon, Password: "pw",
		})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), logger)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := in.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	if err := eng.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	broker := "tcp://" + in.BrokerAddr()

	var mu sync.Mutex
	published := map[string]time.Time{} // device -> time of its last alarm
	var latencies []time.Duration
	offers := 0

	// Units: report moving positions every second; accept each offer and
	// clear it at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var units []paho.Client
	for i := range benchUnits {
		id := fmt.Sprintf("u%03d", i)
		c := benchConnect(b, broker, id)
		units = append(units, c)
		reply := func(incident, action string) {
			body, _ := json.Marshal(map[string]string{"incident": incident, "action": action, "disposition": "genuine"})
			c.Publish("skywatch/unit/"+id+"/reply", 1, false, body)
		}
		tok := c.Subscribe("skywatch/unit/"+id+"/dispatch", 1, func(_ paho.Client, m paho.Message) {
			at := time.Now()
			var msg alarms.DispatchMessage
			if json.Unmarshal(m.Payload(), &msg) != nil || msg.Type != "offer" {
				return
			}
			mu.Lock()
			if t, ok := published[msg.Device]; ok {
				latencies = append(latencies, at.Sub(t))
				delete(published, msg.Device)
			}
			offers++
			mu.Unlock()
			go func() {
				reply(msg.Incident, "accept")
				time.Sleep(50 * time.Millisecond)
				reply(msg.Incident, "cleared")
			}()
		})
		if !tok.WaitTimeout(failAfter) || tok.Error() != nil {
			b.Fatalf("unit %s subscribe: %v", id, tok.Error())
		}
		wg.Add(1)
		go func(c paho.Client, lat, lon float64) {
			defer wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				lat += (rand.Float64() - 0.5) / 2000 // about 50 m a step
				lon += (rand.Float64() - 0.5) / 2000
				body := fmt.Sprintf(`{"lat":%f,"lon":%f,"status":"available"}`, lat, lon)
				c.Publish("skywatch/unit/"+id+"/pos", 0, false, body)
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}(c, cfg.Units[i].Lat, cfg.Units[i].Lon)
	}
	defer func() {
		close(stop)
		wg.Wait()
		for _, c := range units {
			c.Disconnect(0)
		}
	}()
	waitUnitsAvailable(b, eng)

	var devices []paho.Client
	for i := range benchDevices {
		devices = append(devices, benchConnect(b, broker, fmt.Sprintf("d%04d", i)))
	}
	defer func() {
		for _, c := range devices {
			c.Disconnect(0)
		}
	}()

	tick := time.NewTicker(time.Second / time.Duration(rate))
	end := time.After(flood)
	sent, next := 0, 0
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
		}
		d := next % benchDevices
		next++
		dev := fmt.Sprintf("d%04d", d)
		mu.Lock()
		_, busy := published[dev]
		if !busy {
			published[dev] = time.Now()
		}
		mu.Unlock()
		if busy {
			continue // its last alarm has no offer yet; do not join it: the next device sends
		}
		devices[d].Publish("skywatch/dev/"+dev+"/event", 1, false,
			fmt.Sprintf(`{"id":"bench-%d","class":"panic","zone":"1"}`, sent))
		sent++
	}
	tick.Stop()
	time.Sleep(3 * time.Second) // let the last offers arrive

	mu.Lock()
	defer mu.Unlock()
	if len(latencies) == 0 {
		b.Fatalf("no offer arrived for %d alarms", sent)
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(latencies[len(latencies)/2]), "ms-median")
	b.ReportMetric(ms(latencies[len(latencies)*99/100]), "ms-p99")
	b.ReportMetric(float64(len(latencies))/flood.Seconds(), "offers/s")
	b.ReportMetric(float64(sent-len(latencies)), "alarms-without-offer")
}

func benchConnect(b *testing.B, broker, id string) paho.Client {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(id).SetPassword("pw").
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetOrderMatters(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(failAfter) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", id, tok.Error())
	}
	return c
}

func waitUnitsAvailable(b *testing.B, eng *alarms.Engine) {
	deadline := time.Now().Add(failAfter)
	for {
		us, err := eng.Units(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		free := 0
		for _, u := range us {
			if u.Status == alarms.UnitAvailable {
				free++
			}
		}
		if free == benchUnits {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d units available", free, benchUnits)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
