package raftstore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/record"
)

// # Records
//
// Commands, queries and results are written as records of
// persistence/record, the encoding the Badger store writes its values in:
// record.Format, a length, then a record.Command, record.Query or
// record.Result. The hand-written formats 1 to 3 of earlier versions still
// decode (command.go), so a log written by one replays.

func encodeCommand(c command) []byte {
	var r record.Command
	switch c.op {
	case opAppend:
		msgs := make([]*record.Message, len(c.msgs))
		for i, m := range c.msgs {
			msgs[i] = record.MessageOf(m)
		}
		r.Op = &record.Command_Append{Append: &record.Append{
			Session: record.SessionKeyOf(c.session), ExpectedLast: c.expectedLast,
			MaxMessages: int64(c.maxMessages), Messages: msgs, Quota: record.QuotaOf(c.quota),
		}}
	case opDeleteSession:
		r.Op = &record.Command_DeleteSession{DeleteSession: record.SessionKeyOf(c.session)}
	case opPut:
		r.Op = &record.Command_Put{Put: &record.Put{Key: record.KVKeyOf(c.kv), Value: c.value, ExpiresAt: record.TimeOf(c.expiresAt), Quota: record.QuotaOf(c.quota)}}
	case opDelete:
		r.Op = &record.Command_Delete{Delete: record.KVKeyOf(c.kv)}
	case opSweep:
		tenants := make([]string, 0, len(c.retention))
		for t := range c.retention {
			tenants = append(tenants, t)
		}
		slices.Sort(tenants) // the same sweep always encodes the same way
		s := &record.Sweep{Now: record.TimeOf(c.now), LeaderNow: record.TimeOf(c.leaderNow)}
		for _, t := range tenants {
			s.Retention = append(s.Retention, &record.TenantRetention{Tenant: []byte(t), MaxAgeNanos: int64(c.retention[t])})
		}
		r.Op = &record.Command_Sweep{Sweep: s}
	case opDeleteTenant:
		r.Op = &record.Command_DeleteTenant{DeleteTenant: []byte(c.tenant)}
	default:
		panic(fmt.Sprintf("raftstore: encode of unknown %s", c.op))
	}
	return record.Marshal(&r)
}

// decodeCommand decodes a command of any format a version ever wrote.
func decodeCommand(b []byte) (command, error) {
	if len(b) == 0 || b[0] != record.Format {
		return decodeLegacyCommand(b)
	}
	var r record.Command
	if err := record.Unmarshal(b, &r); err != nil {
		return command{}, fmt.Errorf("command: %w", err)
	}
	var c command
	switch op := r.Op.(type) {
	case *record.Command_Append:
		c.op = opAppend
		c.session = op.Append.GetSession().AsSessionKey()
		c.expectedLast = op.Append.GetExpectedLast()
		c.maxMessages = int(op.Append.GetMaxMessages())
		c.quota = op.Append.GetQuota().AsQuota()
		c.msgs = make([]persistence.Message, len(op.Append.GetMessages()))
		for i, m := range op.Append.GetMessages() {
			c.msgs[i] = m.AsMessage()
		}
	case *record.Command_DeleteSession:
		c.op = opDeleteSession
		c.session = op.DeleteSession.AsSessionKey()
	case *record.Command_Put:
		c.op = opPut
		c.kv = op.Put.GetKey().AsKVKey()
		c.value = op.Put.GetValue()
		if c.value == nil {
			c.value = []byte{}
		}
		c.expiresAt = op.Put.GetExpiresAt().AsTime()
		c.quota = op.Put.GetQuota().AsQuota()
	case *record.Command_Delete:
		c.op = opDelete
		c.kv = op.Delete.AsKVKey()
	case *record.Command_Sweep:
		c.op = opSweep
		c.now = op.Sweep.GetNow().AsTime()
		c.leaderNow = op.Sweep.GetLeaderNow().AsTime()
		c.retention = make(map[string]time.Duration, len(op.Sweep.GetRetention()))
		for _, t := range op.Sweep.GetRetention() {
			c.retention[string(t.GetTenant())] = time.Duration(t.GetMaxAgeNanos())
		}
	case *record.Command_DeleteTenant:
		c.op = opDeleteTenant
		c.tenant = string(op.DeleteTenant)
	default:
		return command{}, fmt.Errorf("command: %w: no known op", record.ErrMalformed)
	}
	return c, nil
}

func encodeQuery(q query) []byte {
	var r record.Query
	switch q.kind {
	case queryMeta:
		r.Kind = &record.Query_Meta{Meta: record.SessionKeyOf(q.session)}
	case queryPage:
		r.Kind = &record.Query_Page{Page: &record.Page{Session: record.SessionKeyOf(q.session), Before: q.before, Limit: int64(q.limit), NotBefore: record.TimeOf(q.notBefore)}}
	case queryGet:
		r.Kind = &record.Query_Get{Get: &record.Get{Key: record.KVKeyOf(q.kv), Now: record.TimeOf(q.now)}}
	default:
		panic(fmt.Sprintf("raftstore: encode of unknown query %d", q.kind))
	}
	return record.Marshal(&r)
}

// decodeQuery decodes a query of any format a version ever wrote.
func decodeQuery(b []byte) (query, error) {
	if len(b) == 0 || b[0] != record.Format {
		return decodeLegacyQuery(b)
	}
	var r record.Query
	if err := record.Unmarshal(b, &r); err != nil {
		return query{}, fmt.Errorf("query: %w", err)
	}
	var q query
	switch k := r.Kind.(type) {
	case *record.Query_Meta:
		q.kind = queryMeta
		q.session = k.Meta.AsSessionKey()
	case *record.Query_Page:
		q.kind = queryPage
		q.session = k.Page.GetSession().AsSessionKey()
		q.before = k.Page.GetBefore()
		q.limit = int(k.Page.GetLimit())
		q.notBefore = k.Page.GetNotBefore().AsTime()
	case *record.Query_Get:
		q.kind = queryGet
		q.kv = k.Get.GetKey().AsKVKey()
		q.now = k.Get.GetNow().AsTime()
	default:
		return query{}, fmt.Errorf("query: %w: no known kind", record.ErrMalformed)
	}
	return q, nil
}

func encodeResult(r result) []byte {
	rec := record.Result{Code: uint32(codeOf(r.err))}
	if r.err != nil {
		rec.Error = []byte(r.err.Error())
		var qe *persistence.QuotaError
		if errors.As(r.err, &qe) {
			rec.Quota, rec.QuotaLimit, rec.QuotaUsed = []byte(qe.Quota), qe.Limit, qe.Used
		}
		return record.Marshal(&rec)
	}
	rec.Meta = record.MetaOf(r.meta)
	rec.Stats = record.SweepStatsOf(r.stats)
	rec.Found = r.found
	rec.Value = r.value
	rec.ExpiresAt = record.TimeOf(r.exp)
	for _, m := range r.msgs {
		rec.Messages = append(rec.Messages, record.MessageOf(m))
	}
	return record.Marshal(&rec)
}

// decodeResult decodes a result of any format a version ever wrote.
func decodeResult(b []byte) (result, error) {
	if len(b) == 0 || b[0] != record.Format {
		return decodeLegacyResult(b)
	}
	var rec record.Result
	if err := record.Unmarshal(b, &rec); err != nil {
		return result{}, fmt.Errorf("result: %w", err)
	}
	var r result
	if code := errCode(rec.GetCode()); code != codeOK {
		r.err = errorOf(code, string(rec.GetError()))
		if code == codeQuotaExceeded {
			r.err = &remoteError{msg: string(rec.GetError()), sentinel: &persistence.QuotaError{
				Quota: string(rec.GetQuota()), Limit: rec.GetQuotaLimit(), Used: rec.GetQuotaUsed(),
			}}
		}
		return r, nil
	}
	r.meta = rec.GetMeta().AsMeta()
	r.stats = rec.GetStats().AsSweepStats()
	r.found = rec.GetFound()
	if r.found {
		r.value = rec.GetValue()
		if r.value == nil {
			r.value = []byte{}
		}
	}
	r.exp = rec.GetExpiresAt().AsTime()
	if n := len(rec.GetMessages()); n > 0 {
		r.msgs = make([]persistence.Message, n)
		for i, m := range rec.GetMessages() {
			r.msgs[i] = m.AsMessage()
		}
	}
	return r, nil
}
