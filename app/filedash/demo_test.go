package filedash

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gatehouse/app/dashboards"
)

// TestDemoDirectory: the demo's directory is written once (an edit
// survives), its sample database is built, and its dashboard shows each
// team its own rows.
func TestDemoDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo-dashboards")
	if err := WriteDemo(dir); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(context.Background(), dir, nil)
	if err != nil || len(rep.Problems) > 0 || rep.Dashboards != 1 {
		t.Fatalf("the demo directory does not check: %+v %v", rep, err)
	}
	edited := filepath.Join(dir, DemoSlug+".yaml")
	data, _ := os.ReadFile(edited)
	writeFile(t, dir, DemoSlug+".yaml", string(data)+"# edited\n")
	if err := WriteDemo(dir); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(edited); string(again) != string(data)+"# edited\n" {
		t.Error("WriteDemo overwrote an edited demo file")
	}
	reg := dashboards.NewRegistry()
	srv, err := Open(context.Background(), Config{Dir: dir, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := &fixture{reg: reg, store: newStore(t)}
	sales := viewerIn(t, f.store, "alice@example.com", "sales")
	finance := viewerIn(t, f.store, "fran@example.com", "finance")
	s := f.panel(t, DemoSlug, "biggest", sales, nil)
	contains(t, "sales' biggest months", s, "<table", "sales", "Travel")
	lacks(t, "sales' biggest months", s, "finance")
	contains(t, "finance's biggest months", f.panel(t, DemoSlug, "biggest", finance, nil), "finance")
	contains(t, "all teams", f.panel(t, DemoSlug, "all-teams", finance, nil), "$", "sales", "support", "finance")
}
