package nullbroker

import "github.com/twmb/franz-go/pkg/kversion"

// kversionsMetadataV1 caps Metadata at v1 (kafka-python's version).
func kversionsMetadataV1() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(3, 1)
	return v
}
