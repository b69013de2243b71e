// Command webplugin serves contract.NewWeb as "web": an HTTP handler for a
// host's server; "assets", files for the host to serve (an fs.FS); and
// "notice", a text to read (an io.ReadSeeker).
package main

import (
	"strings"
	"testing/fstest"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

// Notice is what "notice" reads, and "assets" holds as notice.txt.
const Notice = "served by webplugin\n"

func main() {
	assets := fstest.MapFS{
		"notice.txt":     {Data: []byte(Notice)},
		"css/style.css":  {Data: []byte("body { margin: 0 }\n")},
		"img/empty.json": {Data: []byte("{}")},
	}
	plugin.Serve(map[string]any{"web": contract.NewWeb(), "assets": assets, "notice": strings.NewReader(Notice)})
}
