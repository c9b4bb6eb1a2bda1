package filedash

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long Watch waits after a change before reloading, so an
// editor's save (write, rename, chmod) is read once, whole.
const settle = 150 * time.Millisecond

// Watch reloads the directory whenever a YAML file in it is created,
// written, renamed or removed, until ctx ends. Each reload validates the
// files again: a broken edit keeps the last good version (see Reload) and
// shows in Problems. It returns once the directory is watched; the
// watching goes on in the background.
func (s *Server) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(s.cfg.Dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if strings.HasSuffix(filepath.Base(ev.Name), ".yaml") {
					timer.Reset(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.cfg.Log.Warn("watching the dashboards directory", "dir", s.cfg.Dir, "err", err)
			case <-timer.C:
				if err := s.Reload(); err != nil {
					s.cfg.Log.Error("reloading the dashboards directory failed", "dir", s.cfg.Dir, "err", err)
					continue
				}
				s.cfg.Log.Info("dashboards directory reloaded", "dir", s.cfg.Dir, "problems", len(s.Problems()))
			}
		}
	}()
	return nil
}
