package chatui

import (
	"context"
	"fmt"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Bucket is the object store bucket LobeChat keeps files in.
const Bucket = "lobe"

// bucketPolicy lets browsers read the files LobeChat links to, as its own
// setup does; nothing can be listed or written without the keys.
const bucketPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + Bucket + `/*"]}]}`

// EnsureBucket creates LobeChat's bucket on the S3 store at endpoint
// (an existing one is fine) and sets its read policy.
func EnsureBucket(ctx context.Context, endpoint, access, secret string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("object store %q: %w", endpoint, err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: u.Scheme == "https", BucketLookup: minio.BucketLookupPath,
		Region: "us-east-1"}) // a set region spares a lookup of the bucket's location
	if err != nil {
		return fmt.Errorf("object store %s: %w", u.Host, err)
	}
	if err := c.MakeBucket(ctx, Bucket, minio.MakeBucketOptions{}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return fmt.Errorf("create bucket %s: %w", Bucket, err)
		}
	}
	if err := c.SetBucketPolicy(ctx, Bucket, bucketPolicy); err != nil {
		return fmt.Errorf("set bucket %s policy: %w", Bucket, err)
	}
	return nil
}
