package filedash

import (
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DemoSlug is the demo's file dashboard.
const DemoSlug = "team-spend"

// demoFiles are the demo's dashboards directory: sources.yaml, the
// dashboard files and sample.sql, the sample database's contents.
//
//go:embed demo
var demoFiles embed.FS

// WriteDemo makes dir a demo dashboards directory, as `serve --demo` shows
// it: the embedded files, and sample.db built from sample.sql. A file that
// exists is left alone, so edits to the demo survive a restart.
func WriteDemo(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := fs.ReadDir(demoFiles, "demo")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".yaml" {
			continue
		}
		data, err := demoFiles.ReadFile("demo/" + e.Name())
		if err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, e.Name()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return buildSample(filepath.Join(dir, "sample.db"))
}

// buildSample writes the sample database to path unless it exists: built
// in a temporary file, then renamed, so a reader never sees half of it.
func buildSample(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	script, err := demoFiles.ReadFile("demo/sample.sql")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	db, err := sql.Open("sqlite", tmp)
	if err != nil {
		return err
	}
	if _, err := db.Exec(string(script)); err != nil {
		db.Close()
		os.Remove(tmp)
		return fmt.Errorf("building the demo's sample database: %w", err)
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
