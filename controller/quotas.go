package controller

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/metadata"
	"github.com/ringbroker/ringbroker/quota"
)

// AlterClientQuotas answers AlterClientQuotas (key 49) as Kafka's
// ClientQuotaControlManager: each entry is validated against the image's
// quotas (quota.Set.Alter: entity, keys, values; an entry with an error
// changes nothing) and every changed key becomes a ClientQuotaRecord;
// validate_only writes none.
func (c *Controller) AlterClientQuotas(img metadata.Image, req *kmsg.AlterClientQuotasRequest) (*kmsg.AlterClientQuotasResponse, []metadata.Record) {
	_, errs, changes := img.Quotas().Alter(quota.Alterations(req))
	resp := quota.AlterResponse(req, errs)
	if req.ValidateOnly {
		return resp, nil
	}
	var recs []metadata.Record
	for _, ch := range changes {
		recs = append(recs, metadata.QuotaRecord(ch))
	}
	return resp, recs
}
