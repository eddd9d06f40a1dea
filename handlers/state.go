package handlers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/podman-worker/podman-worker/fault"
	"github.com/podman-worker/podman-worker/podman"
)

// A long-lived container's /etc, /home and writable folders are tmpfs:
// memory, which Podman fills again from the image at each start. What the
// worker wrote there (add_user's account files and home, add_file's files)
// would be lost by stop and start, so the worker keeps each write it made
// and makes it again, in order, when the container starts after a stop.
// The journal lives in the worker: a worker restart forgets it (what the
// container holds while it runs is not affected).

// Bounds of the journal: per container, and in all.
const (
	maxJournalPerContainer = 16 << 20
	maxJournal             = 256 << 20
)

type stateJournal struct {
	mu    sync.Mutex
	byID  map[string]*containerJournal
	total int
}

type containerJournal struct {
	writes []archiveWrite
	bytes  int
}

// archiveWrite is one upload: entries into dir.
type archiveWrite struct {
	dir     string
	entries []podman.ArchiveEntry
}

func newStateJournal() *stateJournal {
	return &stateJournal{byID: map[string]*containerJournal{}}
}

// record keeps an upload the worker made into a container's state; false
// when the bounds leave no room for it (it will not come back after a
// stop and start).
func (j *stateJournal) record(id, dir string, entries []podman.ArchiveEntry) bool {
	size := len(dir)
	for _, e := range entries {
		size += len(e.Data) + len(e.Header.Name) + 512
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	c := j.byID[id]
	if c == nil {
		c = &containerJournal{}
	}
	if c.bytes+size > maxJournalPerContainer || j.total+size > maxJournal {
		return false
	}
	c.writes = append(c.writes, archiveWrite{dir: dir, entries: entries})
	c.bytes += size
	j.total += size
	j.byID[id] = c
	return true
}

// replay makes a container's recorded uploads again, in order.
func (j *stateJournal) replay(ctx context.Context, client *podman.Client, id string) error {
	j.mu.Lock()
	var writes []archiveWrite
	if c := j.byID[id]; c != nil {
		writes = append(writes, c.writes...)
	}
	j.mu.Unlock()
	for i, w := range writes {
		if err := client.PutArchive(ctx, id, w.dir, w.entries); err != nil {
			var names []string
			for _, e := range w.entries {
				names = append(names, e.Header.Name)
			}
			return fault.Wrap(fault.KindPodman, err, "the container started, but writing again what the worker had added (%d of %d: %s in %s) failed: %v",
				i+1, len(writes), strings.Join(names, ", "), w.dir, err)
		}
	}
	return nil
}

// forget drops a container's journal (it was removed).
func (j *stateJournal) forget(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c := j.byID[id]; c != nil {
		j.total -= c.bytes
		delete(j.byID, id)
	}
}

// requireWritable answers Forbidden when path cannot be written in the
// container, naming where it can and how to add a place.
func requireWritable(w podman.Writable, path, container, what string) error {
	if w.Covers(path) {
		return nil
	}
	return fault.Errorf(fault.KindForbidden, "Forbidden: %s %s: container %q has a read-only root; it can be written in %s only. "+
		"Name further folders in create's \"writable\" param (in-memory copies of the image's folder, like /etc and /home)",
		what, path, container, strings.Join(w.Places, ", ")).With("container", container).With("path", path)
}

func journalNote(kept bool) string {
	if kept {
		return ""
	}
	return fmt.Sprintf("kept in the container, but past the worker's bound of %d MiB of writes per container, so a stop and start will not bring it back", maxJournalPerContainer>>20)
}
