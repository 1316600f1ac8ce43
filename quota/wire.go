package quota

import "github.com/twmb/franz-go/pkg/kmsg"

// Alterations reads AlterClientQuotas' entries.
func Alterations(r *kmsg.AlterClientQuotasRequest) []Alteration {
	alts := make([]Alteration, len(r.Entries))
	for i, e := range r.Entries {
		for _, c := range e.Entity {
			alts[i].Types = append(alts[i].Types, c.Type)
			alts[i].Names = append(alts[i].Names, c.Name)
		}
		for _, op := range e.Ops {
			alts[i].Ops = append(alts[i].Ops, Op{Key: op.Key, Value: op.Value, Remove: op.Remove})
		}
	}
	return alts
}

// AlterResponse answers r's entries, in order, with errs (nil: done);
// each entry's entity is echoed as the request gave it, as Kafka does.
func AlterResponse(r *kmsg.AlterClientQuotasRequest, errs []*Error) *kmsg.AlterClientQuotasResponse {
	resp := &kmsg.AlterClientQuotasResponse{Version: r.Version}
	for i, e := range r.Entries {
		re := kmsg.AlterClientQuotasResponseEntry{}
		for _, c := range e.Entity {
			re.Entity = append(re.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: c.Type, Name: c.Name})
		}
		if errs[i] != nil {
			msg := errs[i].Message
			re.ErrorCode, re.ErrorMessage = errs[i].Code, &msg
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp
}
