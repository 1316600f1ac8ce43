package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRepoStandsAlone checks that the repository explains itself: no tracked
// file points at a path outside the repo or cites a document the repo does
// not ship, and every relative link in a Markdown file lands on a tracked
// file inside the repo.
func TestRepoStandsAlone(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	tracked := map[string]bool{}
	for _, p := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		tracked[p] = true
	}
	if len(tracked) < 50 {
		t.Fatalf("git ls-files listed only %d files", len(tracked))
	}

	// Built by concatenation so this file does not match itself.
	forbidden := []string{
		".." + "/shared",          // a sibling directory of the checkout
		"/" + "work/",             // the development machine's layout
		"STYLE" + ".md",           // a style guide the repo does not ship
		"CLIENTS-AND" + "-LIMITS", // a machine notes file the repo does not ship
	}
	mdLink := regexp.MustCompile(`\]\(([^)\s]+)\)`)

	var problems []string
	for p := range tracked {
		full := filepath.Join(root, p)
		if fi, err := os.Lstat(full); err != nil || !fi.Mode().IsRegular() {
			continue // symlinks in tuning/testdata; deleted and not yet committed
		}
		data, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary (plots)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, f := range forbidden {
				if strings.Contains(line, f) {
					problems = append(problems, p+":"+strconv.Itoa(i+1)+": refers to "+f+": "+strings.TrimSpace(line))
				}
			}
			if !strings.HasSuffix(p, ".md") {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				rel := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(p), target)))
				if strings.HasPrefix(rel, "../") || rel == ".." || filepath.IsAbs(target) {
					problems = append(problems, p+":"+strconv.Itoa(i+1)+": link leaves the repo: "+m[1])
					continue
				}
				if !tracked[rel] && !isTrackedDir(tracked, rel) {
					problems = append(problems, p+":"+strconv.Itoa(i+1)+": link to a file the repo does not hold: "+m[1])
				}
			}
		}
	}
	if len(problems) > 0 {
		t.Errorf("the repo must stand alone; move what a reader needs into docs/:\n%s", strings.Join(problems, "\n"))
	}
	if !tracked["docs/DESIGN.md"] {
		t.Error("docs/DESIGN.md (the design the code aims at) is not tracked")
	}
}

func isTrackedDir(tracked map[string]bool, dir string) bool {
	for p := range tracked {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}
