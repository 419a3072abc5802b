package session

import (
	"time"

	"github.com/parley-chat/parley/persistence"
)

// An activation keeps its session's newest messages in memory, oldest
// first: at least the TailSize newest (a reply's context), and up to
// HistoryTail while their text fits HistoryTailBytes, so the newest
// history pages need no store read. Activation loads only the TailSize
// newest; the first page read from the store fills the rest.

// setTail replaces the tail with msgs (oldest first); all says whether
// they are every message the session holds.
func (g *grain) setTail(msgs []persistence.Message, all bool) {
	g.tail, g.tailAll, g.tailBytes, g.newest = msgs, all, 0, nil
	for _, m := range msgs {
		g.tailBytes += len(m.Content)
	}
	g.trimTail()
}

// remember adds a message just stored as the newest.
func (g *grain) remember(msg persistence.Message) {
	g.tail = append(g.tail, msg)
	g.tailBytes += len(msg.Content)
	g.newest = nil
	g.trimTail()
}

// trimTail drops the oldest messages past the bounds. Those past the
// tenant's MaxMessages the store deleted too, so the tail still holds
// every message when it did; the others are still stored.
func (g *grain) trimTail() {
	drop := 0
	if limit := g.retention.MaxMessages; limit > 0 && len(g.tail) > limit {
		drop = len(g.tail) - limit
	}
	bytes := g.tailBytes
	for _, m := range g.tail[:drop] {
		bytes -= len(m.Content)
	}
	keep := max(g.cfg.TailSize, g.cfg.HistoryTail)
	for len(g.tail)-drop > g.cfg.TailSize && (len(g.tail)-drop > keep || bytes > g.cfg.HistoryTailBytes) {
		bytes -= len(g.tail[drop].Content)
		drop++
		g.tailAll = false
	}
	// Resliced, not copied: append reallocates once the array is full,
	// and the dropped messages go with the old one.
	g.tail, g.tailBytes = g.tail[drop:], bytes
}

// recentFrom is the index in tail of the oldest of the TailSize newest
// messages.
func (g *grain) recentFrom() int {
	return max(0, len(g.tail)-g.cfg.TailSize)
}

// tailPage returns what Store.Page(before, limit, notBefore) would, from
// the tail, and whether the tail could answer: it holds limit such
// messages, or every message of the session that history shows (one
// that retention hides stays hidden).
func (g *grain) tailPage(before uint64, limit int, notBefore time.Time) ([]persistence.Message, bool) {
	var out []persistence.Message
	for i := len(g.tail) - 1; i >= 0 && len(out) < limit; i-- {
		m := g.tail[i]
		if (before != 0 && m.Seq >= before) || m.CreatedAt.Before(notBefore) {
			continue
		}
		out = append(out, m)
	}
	return out, len(out) == limit || g.tailAll
}

// fillTail keeps the newest page the store returned (newest first, asked
// for limit) as the tail when it extends it: the page ends at the
// session's newest message, so it holds the tail and older ones. A page
// shorter than limit is every message history shows.
func (g *grain) fillTail(page []persistence.Message, limit int) {
	if len(page) == 0 || len(page) < len(g.tail) || page[0].Seq != g.lastSeq {
		// Shorter, or not the session's newest (written elsewhere
		// meanwhile).
		return
	}
	msgs := make([]persistence.Message, len(page))
	for i, m := range page {
		msgs[len(page)-1-i] = m
	}
	g.setTail(msgs, len(page) < limit)
}
