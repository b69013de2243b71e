package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-multierror"
	goplugin "github.com/hashicorp/go-plugin"
)

// Manager runs many plugins: every plugin binary in a directory, say. It
// names each plugin after its file (without directory), or as LoadAs says,
// hands out their objects with DispenseFrom, unloads one with Unload, and
// closes them all at once. With Restart, a plugin that died is started
// again by the next DispenseFrom.
type Manager struct {
	loadOpts          []Option
	restart           bool
	backoff, maxDelay time.Duration
	log               hclog.Logger

	// ctx ends every start in progress when the Manager is closed.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards plugins and closed; never held while loading
	plugins map[string]*managed
	closed  bool
}

type managed struct {
	path       string
	client     *Client
	failures   int           // restarts that failed in a row
	nextTry    time.Time     // no restart before this
	restarting chan struct{} // closed when the restart in progress ends; nil if none
}

// ManagerOption configures a Manager.
type ManagerOption func(*Manager)

// LoadOptions are passed to Load for every plugin the Manager starts.
// Default: none (Load's defaults).
func LoadOptions(opts ...Option) ManagerOption {
	return func(m *Manager) { m.loadOpts = append(m.loadOpts, opts...) }
}

// Restart makes DispenseFrom start a plugin again when its process has
// died. A restart that fails is retried no sooner than initial after,
// doubling each time up to max. Default: no restarts; DispenseFrom of a
// dead plugin fails.
func Restart(initial, max time.Duration) ManagerOption {
	return func(m *Manager) { m.restart, m.backoff, m.maxDelay = true, initial, max }
}

// ManagerLogger sets the logger for the Manager's own events (restarts).
// Default: the logger of the LoadOptions, or hclog at Info on stderr.
func ManagerLogger(l hclog.Logger) ManagerOption { return func(m *Manager) { m.log = l } }

// NewManager returns a Manager with no plugins.
func NewManager(opts ...ManagerOption) *Manager {
	m := &Manager{plugins: map[string]*managed{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(m)
	}
	if m.log == nil {
		cfg := config{}
		for _, o := range m.loadOpts {
			o(&cfg)
		}
		m.log = cfg.logger
		if m.log == nil {
			m.log = hclog.New(&hclog.LoggerOptions{Name: "refplug", Level: hclog.Info})
		}
	}
	return m
}

// loadDirParallel is how many plugins LoadDir starts at once: a start
// mostly waits (exec, the plugin's runtime start, the handshake), so
// several overlap well even on few cores, while a directory of hundreds
// does not fork hundreds of processes at the same instant.
const loadDirParallel = 16

// LoadDir starts every plugin in dir whose file name matches glob
// (go-plugin's Discover; "*" for all), up to 16 at a time. It returns an
// error listing, in file name order, every plugin that failed to start;
// the others run.
func (m *Manager) LoadDir(dir, glob string) error {
	paths, err := goplugin.Discover(glob, dir)
	if err != nil {
		return fmt.Errorf("host: discovering plugins %q in %s: %w", glob, dir, err)
	}
	if len(paths) == 0 {
		return fmt.Errorf("host: no file in %s matches %q", dir, glob)
	}
	results := make([]error, len(paths))
	slots := make(chan struct{}, loadDirParallel)
	var wg sync.WaitGroup
	for i, p := range paths {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			results[i] = m.Load(p)
		})
	}
	wg.Wait()
	var errs *multierror.Error
	for _, err := range results {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}

// Load starts the plugin at path under the name of its file.
func (m *Manager) Load(path string) error { return m.LoadAs(filepath.Base(path), path) }

// LoadAs starts the plugin at path under name: several plugins may come
// from one binary (with different LoadOptions' arguments, say), or a
// plugin may be known by a name other than its file's.
func (m *Manager) LoadAs(name, path string) error {
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return fmt.Errorf("host: Manager.Load(%s): the manager is closed", path)
	case m.plugins[name] != nil:
		m.mu.Unlock()
		return fmt.Errorf("host: Manager.Load(%s): a plugin named %s is loaded already", path, name)
	}
	mp := &managed{path: path}
	m.plugins[name] = mp // reserve the name
	m.mu.Unlock()

	c, err := m.start(name, path)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil || m.closed || m.plugins[name] != mp {
		if err == nil {
			c.Close()
			err = fmt.Errorf("host: Manager.Load(%s): the manager was closed, or %s unloaded, meanwhile", path, name)
		}
		if m.plugins[name] == mp {
			delete(m.plugins, name)
		}
		return err
	}
	mp.client = c
	return nil
}

// start loads the plugin at path as name, ended at once if the Manager is
// closed meanwhile.
func (m *Manager) start(name, path string) (*Client, error) {
	return m.startContext(context.Background(), name, path)
}

// startContext is start that also ends the start when ctx ends.
func (m *Manager) startContext(ctx context.Context, name, path string) (*Client, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(m.ctx, func() { cancel(errManagerClosed) })
	defer stop()
	c, err := LoadContext(ctx, path, append(slices.Clone(m.loadOpts), withName(name))...)
	if err != nil && errors.Is(context.Cause(ctx), errManagerClosed) {
		return nil, fmt.Errorf("host: Manager.Load(%s): the manager was closed while the plugin started", path)
	}
	return c, err
}

var errManagerClosed = errors.New("the manager was closed")

// Unload ends the plugin named name and forgets it: later calls through
// its proxies fail with refbroker.ErrDisconnected, and the name is free
// for another Load. A plugin still starting is ended at once.
func (m *Manager) Unload(name string) error {
	m.mu.Lock()
	mp := m.plugins[name]
	if mp == nil {
		m.mu.Unlock()
		return fmt.Errorf("host: Manager.Unload: no plugin named %s is loaded (loaded: %v)", name, m.names())
	}
	delete(m.plugins, name)
	c := mp.client
	m.mu.Unlock()
	if c == nil { // still starting: LoadAs sees the name gone and ends it
		return nil
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("host: closing plugin %s: %w", name, err)
	}
	return nil
}

// Names lists the loaded plugins.
func (m *Manager) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.names()
}

func (m *Manager) names() []string {
	names := make([]string, 0, len(m.plugins))
	for n, p := range m.plugins {
		if p.client != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Client returns the running client of plugin, restarting it first if it
// died and the Manager restarts plugins. It is ClientContext without a
// deadline: a restart is bounded by the start timeout.
func (m *Manager) Client(plugin string) (*Client, error) {
	return m.ClientContext(context.Background(), plugin)
}

// ClientContext is Client that gives up when ctx ends: a restart it
// started is ended at once (and the next caller may start one without
// waiting for the back-off: the plugin did not fail), and a caller that
// finds a restart in progress waits for it no longer than ctx.
func (m *Manager) ClientContext(ctx context.Context, plugin string) (*Client, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("host: plugin %s: the manager is closed", plugin)
		}
		mp := m.plugins[plugin]
		if mp == nil || mp.client == nil {
			m.mu.Unlock()
			return nil, fmt.Errorf("host: no plugin named %s is loaded (loaded: %v)", plugin, m.names())
		}
		if mp.restarting != nil { // another caller restarts it: wait for that
			done := mp.restarting
			m.mu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("host: plugin %s is being restarted: %w", plugin, context.Cause(ctx))
			}
		}
		c := mp.client
		if !c.dead() {
			m.mu.Unlock()
			return c, nil
		}
		if !m.restart {
			m.mu.Unlock()
			return nil, fmt.Errorf("host: plugin %s has exited (hint: host.Restart restarts plugins that die)", plugin)
		}
		if wait := time.Until(mp.nextTry); wait > 0 {
			m.mu.Unlock()
			return nil, fmt.Errorf("host: plugin %s has exited and its last restart failed; next try in %v", plugin, wait.Round(time.Millisecond))
		}
		mp.restarting = make(chan struct{})
		m.mu.Unlock()
		return m.restartPlugin(ctx, plugin, mp, c)
	}
}

// restartPlugin starts plugin again in place of its dead client c. The
// caller has marked mp as restarting; other callers wait for the end.
func (m *Manager) restartPlugin(ctx context.Context, plugin string, mp *managed, c *Client) (*Client, error) {
	m.log.Warn("plugin exited; restarting it", "plugin", plugin, "path", mp.path)
	c.Close()
	nc, err := m.startContext(ctx, plugin, mp.path)

	m.mu.Lock()
	defer m.mu.Unlock()
	close(mp.restarting)
	mp.restarting = nil
	switch {
	case err != nil && m.closed:
		return nil, err
	case err != nil && ctx.Err() != nil:
		// The caller gave up, not the plugin: no back-off for the next.
		m.log.Warn("restarting plugin abandoned by its caller", "plugin", plugin, "error", context.Cause(ctx))
		return nil, fmt.Errorf("host: restarting plugin %s: %w", plugin, context.Cause(ctx))
	case err != nil:
		mp.failures++
		delay := min(m.backoff<<min(mp.failures-1, 30), m.maxDelay)
		mp.nextTry = time.Now().Add(delay)
		m.log.Error("restarting plugin failed", "plugin", plugin, "error", err, "next_try_in", delay)
		return nil, fmt.Errorf("restarting plugin %s: %w", plugin, err)
	case m.closed || m.plugins[plugin] != mp:
		nc.Close()
		return nil, fmt.Errorf("host: plugin %s: the manager was closed, or the plugin unloaded, meanwhile", plugin)
	}
	mp.client, mp.failures, mp.nextTry = nc, 0, time.Time{}
	m.log.Info("plugin restarted", "plugin", plugin)
	return nc, nil
}

// DispenseFrom returns the object named name that plugin serves, as T (see
// Dispense). A proxy belongs to the plugin process it came from: when that
// process dies and the Manager restarts the plugin, calls through the old
// proxy keep failing with refbroker.ErrDisconnected; call DispenseFrom
// again for one from the new process (it restarts the plugin if needed).
func DispenseFrom[T any](m *Manager, plugin, name string) (T, error) {
	c, err := m.Client(plugin)
	if err != nil {
		var zero T
		return zero, err
	}
	return Dispense[T](c, name)
}

// DispenseFromContext is DispenseFrom that gives up when ctx ends before
// the plugin answers (see DispenseContext), or before a restart it needs
// first is done (see ClientContext).
func DispenseFromContext[T any](ctx context.Context, m *Manager, plugin, name string) (T, error) {
	c, err := m.ClientContext(ctx, plugin)
	if err != nil {
		var zero T
		return zero, err
	}
	return DispenseContext[T](ctx, c, name)
}

// Close ends every plugin, in parallel, and returns what failed. Later
// calls through their proxies fail with refbroker.ErrDisconnected. Plugins
// still starting are ended at once (their Load fails).
func (m *Manager) Close() error {
	m.cancel()
	m.mu.Lock()
	m.closed = true
	var clients []*Client
	for _, p := range m.plugins {
		if p.client != nil {
			clients = append(clients, p.client)
		}
	}
	m.mu.Unlock()
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Close(); err != nil {
				errs[i] = fmt.Errorf("host: closing plugin %s: %w", c.name, err)
			}
		}()
	}
	wg.Wait()
	return multierror.Append(nil, errs...).ErrorOrNil()
}
