package hardware

import (
	"errors"
	"fmt"
	"net/url"
)

// validateBroker checks a simulator's broker URL (config key "broker").
func validateBroker(broker string) error {
	u, err := url.Parse(broker)
	switch {
	case broker == "":
		return errors.New("broker: required")
	case err != nil:
		return fmt.Errorf("broker: not a URL")
	case u.Scheme != "tcp" && u.Scheme != "mqtt":
		return fmt.Errorf("broker: scheme %q is not tcp or mqtt", u.Scheme)
	case u.Port() == "":
		return fmt.Errorf("broker: no port")
	}
	return nil
}
