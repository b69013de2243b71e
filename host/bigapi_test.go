package host_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/testdata/bigapi/api"
)

// TestMattermostScale: a contract of the size and shape of Mattermost's
// plugin API (testdata/bigapi: about 250 methods on API, 47 on Hooks) is
// dispensed from a real plugin process and used as such a host would use
// it: error-like *AppError results, props of any holding registered
// structs, a pointer to fill, a reader, variadic any, a panic in the
// plugin, and the HTTP hook behind a real server.
func TestMattermostScale(t *testing.T) {
	c := load(t, "bigplugin")

	start := time.Now()
	a, err := host.Dispense[api.API](c, "api")
	if err != nil {
		t.Fatalf("Dispense[api.API]: %v", err)
	}
	t.Logf("Dispense[api.API] (%d methods): %v", reflect.TypeFor[api.API]().NumMethod(), time.Since(start))
	start = time.Now()
	hooks, err := host.Dispense[api.Hooks](c, "hooks")
	if err != nil {
		t.Fatalf("Dispense[api.Hooks]: %v", err)
	}
	t.Logf("Dispense[api.Hooks] (%d methods): %v", reflect.TypeFor[api.Hooks]().NumMethod(), time.Since(start))

	t.Run("results", func(t *testing.T) {
		u, appErr := a.GetUser17("u1")
		if appErr != nil {
			t.Fatalf("GetUser17: %v", appErr)
		}
		if want := (&api.User{ID: "u1", Username: "user17", Props: map[string]string{"n": "17"}}); !reflect.DeepEqual(u, want) {
			t.Errorf("GetUser17 = %+v; want %+v", u, want)
		}
		// A nil *AppError must arrive as a nil pointer, and a set one
		// with its fields.
		if _, appErr := a.GetUser3(""); appErr == nil || appErr.StatusCode != 400 || appErr.Where != "GetUser3" {
			t.Errorf("GetUser3(\"\") error = %#v; want the plugin's 400 from GetUser3", appErr)
		}
		if cfg := a.GetConfig29(); cfg == nil || cfg.MaxUsers != 29 || cfg.SiteURL != "https://example.com" {
			t.Errorf("GetConfig29 = %+v", cfg)
		}
		posts, appErr := a.GetPosts8([]string{"a", "b"}, 0, 50)
		if appErr != nil || len(posts) != 2 || posts[1].ID != "b" || posts[1].Message != "post 8" {
			t.Errorf("GetPosts8 = %+v, %v", posts, appErr)
		}
		if !a.HasPermission4("u1", &api.Permission{ID: "manage_system"}) || a.HasPermission4("u1", nil) {
			t.Error("HasPermission4 does not see the permission it is given")
		}
	})

	t.Run("props", func(t *testing.T) {
		// SlackAttachment crosses only inside Props, an any: refgen's
		// generated init registers it, with no registration by hand.
		in := &api.Post{ChannelID: "c1", Message: "hi", Props: map[string]any{
			"attachments": []*api.SlackAttachment{{
				Title: "build",
				Fields: []*api.SlackAttachmentField{
					{Title: "status", Value: "green", Short: true},
					{Title: "tests", Value: int64(812)},
				},
			}},
			"from_bot": true,
			"nested":   map[string]any{"k": []any{"x", 1.5}},
		}}
		out, appErr := a.CreatePost(in)
		if appErr != nil {
			t.Fatalf("CreatePost: %v", appErr)
		}
		want := *in
		want.ID = "new-post"
		if !reflect.DeepEqual(out, &want) {
			t.Errorf("CreatePost returned\n%#v\nwant\n%#v", out, &want)
		}
		a.PublishEvent12("custom_event", map[string]any{"post": in}, &api.Broadcast{ChannelID: "c1"})
	})

	t.Run("fill", func(t *testing.T) {
		var settings api.PluginSettings
		if err := a.LoadPluginConfiguration(&settings); err != nil {
			t.Fatalf("LoadPluginConfiguration: %v", err)
		}
		if settings != (api.PluginSettings{Greeting: "hello", Limit: 25}) {
			t.Errorf("LoadPluginConfiguration filled %+v; want {hello 25}", settings)
		}
	})

	t.Run("reader", func(t *testing.T) {
		body := strings.Repeat("0123456789", 100_000)
		info, appErr := a.UploadFile("log.txt", strings.NewReader(body))
		if appErr != nil {
			t.Fatalf("UploadFile: %v", appErr)
		}
		if info.Name != "log.txt" || info.Size != int64(len(body)) {
			t.Errorf("UploadFile = %+v; want log.txt of %d bytes", info, len(body))
		}
	})

	t.Run("kv", func(t *testing.T) {
		if appErr := a.KVSet21("k", []byte("v1")); appErr != nil {
			t.Fatalf("KVSet21: %v", appErr)
		}
		if v, appErr := a.KVGet21("k"); appErr != nil || string(v) != "v1" {
			t.Errorf("KVGet21 = %q, %v; want v1", v, appErr)
		}
		a.LogInfo("stored", "key", "k", "size", 2, "at", time.Unix(0, 0).UTC())
	})

	t.Run("panic", func(t *testing.T) {
		u, appErr := a.Explode("boom")
		if u != nil || appErr == nil {
			t.Fatalf("Explode = %v, %v; want a nil user and an *AppError", u, appErr)
		}
		if appErr.StatusCode != 500 || !strings.Contains(appErr.Message, "boom") {
			t.Errorf("Explode error = %#v; want status 500 naming the panic", appErr)
		}
		var err error = appErr
		var target *api.AppError
		if !errors.As(err, &target) {
			t.Error("errors.As does not find the *AppError")
		}
		// The plugin still serves after the panic.
		if _, appErr := a.GetUser0("u"); appErr != nil {
			t.Errorf("GetUser0 after a panic: %v", appErr)
		}
	})

	t.Run("hooks", func(t *testing.T) {
		if err := hooks.OnActivate(); err != nil {
			t.Fatalf("OnActivate: %v", err)
		}
		p := &api.Post{ID: "p", Message: "m", Props: map[string]any{"k": "v"}}
		if got, reason := hooks.MessageWillBePosted44(&api.Context{SessionID: "s"}, p); reason != "" || !reflect.DeepEqual(got, p) {
			t.Errorf("MessageWillBePosted44 = %+v, %q", got, reason)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hooks.ServeHTTP(&api.Context{SessionID: "sess-1", RequestID: "r"}, w, r)
		}))
		defer srv.Close()
		resp, err := http.Post(srv.URL+"/plugins/x/hook", "text/plain", strings.NewReader("ignored"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if string(got) != "plugin saw POST /plugins/x/hook" || resp.Header.Get("X-Session") != "sess-1" {
			t.Errorf("ServeHTTP answered %q with X-Session %q", got, resp.Header.Get("X-Session"))
		}
	})
}
