package filedash

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is a dashboards directory as read: its sources and dashboard files,
// with the problems found in each file.
type Dir struct {
	Path    string
	Sources map[string]*SourceSpec // nil when sources.yaml is missing or broken
	// SourcesBroken is set when sources.yaml exists but has problems.
	SourcesBroken bool
	// Files are the dashboard files that parsed, by file name.
	Files map[string]*File
	// Names are every dashboard file's name, sorted.
	Names []string
	// Problems are by file name ("" for the directory itself).
	Problems map[string][]Problem
}

// AllProblems returns every problem, by file name then position.
func (d *Dir) AllProblems() []Problem {
	var out []Problem
	names := make([]string, 0, len(d.Problems))
	for n := range d.Problems {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, d.Problems[n]...)
	}
	return out
}

// Read reads dir without connecting to any database: sources.yaml and
// every other *.yaml file, each parsed and checked against the format
// (see docs/dashboards.schema.json) and against the sources.
func Read(dir string, getenv func(string) string) (*Dir, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	d := &Dir{Path: dir, Files: map[string]*File{}, Problems: map[string][]Problem{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the dashboards directory %s does not exist", dir)
		}
		return nil, fmt.Errorf("cannot read the dashboards directory: %w", err)
	}
	srcPath := filepath.Join(dir, SourcesFile)
	if data, err := os.ReadFile(srcPath); err == nil {
		srcs, probs := parseSources(srcPath, dir, data, getenv)
		if len(probs) > 0 {
			d.Problems[SourcesFile] = probs
			d.SourcesBroken = true
		}
		d.Sources = srcs
	} else if !errors.Is(err, fs.ErrNotExist) {
		d.Problems[SourcesFile] = []Problem{{File: srcPath, Message: "cannot read: " + err.Error()}}
		d.SourcesBroken = true
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".yaml") || name == SourcesFile || strings.HasPrefix(name, ".") {
			continue
		}
		d.Names = append(d.Names, name)
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			d.Problems[name] = []Problem{{File: path, Message: "cannot read: " + err.Error()}}
			continue
		}
		f, probs := parseDashboard(path, name, data)
		if f != nil && !d.SourcesBroken {
			if d.Sources[f.Source] == nil {
				pr := f.SourcePos
				pr.Message = fmt.Sprintf("source %q is not named in %s", f.Source, SourcesFile)
				probs = append(probs, pr)
				f = nil
			}
		}
		if len(probs) > 0 {
			d.Problems[name] = probs
			continue
		}
		d.Files[name] = f
	}
	sort.Strings(d.Names)
	// Slugs are unique across files; the first file by name keeps one.
	bySlug := map[string]string{}
	for _, n := range d.Names {
		f := d.Files[n]
		if f == nil {
			continue
		}
		if other, dup := bySlug[f.Slug]; dup {
			d.Problems[n] = append(d.Problems[n], Problem{File: f.Path, Line: 1, Col: 1,
				Message: fmt.Sprintf("slug %q is already used by %s", f.Slug, other)})
			delete(d.Files, n)
			continue
		}
		bySlug[f.Slug] = n
	}
	return d, nil
}
