package host

import "time"

// AwaitGoPluginConnection waits until go-plugin's connection to a plugin
// whose own connection started early is made and has carried a round trip
// (or has failed): the plugin then runs every goroutine it keeps while
// connected, which tests that count them take as their baseline.
func AwaitGoPluginConnection(c *Client) {
	if c.gpReady != nil {
		<-c.gpReady
	}
	if c.rpc != nil {
		c.rpc.Ping()
	}
}

// SetProbeWait sets how long Attach waits for what listens at its address
// to answer, and returns what restores it.
func SetProbeWait(d time.Duration) (restore func()) {
	old := probeWait
	probeWait = d
	return func() { probeWait = old }
}

// SetQuitWait sets how long Close waits for a remote plugin to answer
// go-plugin's quit, and returns what restores it.
func SetQuitWait(d time.Duration) (restore func()) {
	old := quitWait
	quitWait = d
	return func() { quitWait = old }
}
