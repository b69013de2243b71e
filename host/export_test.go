package host

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
