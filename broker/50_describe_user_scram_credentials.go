package broker

// DescribeUserScramCredentials (key 50), version 0.
//
// Behaviour: needs DESCRIBE on the cluster (else the response's error is
// CLUSTER_AUTHORIZATION_FAILED). No users (null or empty) describes every
// user with a credential; each named user is answered with its mechanisms
// and iterations (never salts or keys), RESOURCE_NOT_FOUND ("Attempt to
// describe a user credential that does not exist: <user>") or, for a user
// named twice, DUPLICATE_RESOURCE, as Kafka's KRaft metadata cache answers.
// Answered on the ring thread: it reads the credential set's snapshot.
//
// Differences from Apache Kafka: results in request order (all users:
// sorted), where Kafka's follow a hash map; on a broker without security
// options every user is RESOURCE_NOT_FOUND. In a cluster the set is the
// metadata log's (cluster.go syncSecurity).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ringbroker/ringbroker/auth/acl"
	"github.com/ringbroker/ringbroker/auth/sasl"
	"github.com/ringbroker/ringbroker/auth/store"
	"github.com/ringbroker/ringbroker/netpoll"
	"github.com/ringbroker/ringbroker/proto"
)

func init() {
	register(decoded(kmsg.DescribeUserSCRAMCredentials, 0, 0, aliasing, (*Broker).describeUserScramCredentials))
}

func (b *Broker) describeUserScramCredentials(req netpoll.Request, h proto.RequestHeader, r *kmsg.DescribeUserSCRAMCredentialsRequest) {
	resp := kmsg.DescribeUserSCRAMCredentialsResponse{Version: h.APIVersion}
	if !b.authorizeCluster(req, acl.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.replyMsg(req, &h, &resp)
		return
	}
	var set map[store.Key]sasl.Credential
	var users []string
	if b.sec != nil {
		set = b.sec.creds.Snapshot()
		if len(r.Users) == 0 {
			users = b.sec.creds.Users()
		}
	}
	count := map[string]int{}
	for _, u := range r.Users {
		if count[u.Name]++; count[u.Name] == 1 {
			users = append(users, u.Name)
		}
	}
	for _, u := range users {
		res := kmsg.DescribeUserSCRAMCredentialsResponseResult{User: u}
		switch {
		case count[u] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = errMsg("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
		default:
			for _, code := range []int8{store.MechanismSHA256, store.MechanismSHA512} {
				if c, ok := set[store.Key{User: u, Mechanism: code}]; ok {
					res.CredentialInfos = append(res.CredentialInfos, kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo{Mechanism: code, Iterations: int32(c.Iterations)})
				}
			}
			if len(res.CredentialInfos) == 0 {
				res.ErrorCode = kerr.ResourceNotFound.Code
				res.ErrorMessage = errMsg("Attempt to describe a user credential that does not exist: " + u)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	b.replyMsg(req, &h, &resp)
}
