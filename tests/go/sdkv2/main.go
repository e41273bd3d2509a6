// A real consumer of credential_process: the AWS SDK for Go v2 (Debian golang-github-aws-aws-sdk-go-v2-dev),
// what Terraform's AWS provider uses.
//
//	caller-identity-v2 PROFILE STS_URL [CALLS]
//
// Loads the shared config for PROFILE (so its credential_process resolves the credentials), makes
// ONE STS client with the endpoint set here (this SDK version reads no endpoint from the profile),
// calls GetCallerIdentity CALLS times (default 2) on it and prints one JSON line {"Arn": ...} per
// call. Built offline in GOPATH mode: GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "caller-identity-v2: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		fmt.Fprintln(os.Stderr, "usage: caller-identity-v2 PROFILE STS_URL [CALLS]")
		os.Exit(2)
	}
	profile, endpoint, calls := os.Args[1], os.Args[2], 2
	if len(os.Args) == 4 {
		n, err := strconv.Atoi(os.Args[3])
		if err != nil || n < 1 {
			fail("CALLS must be a positive integer, not %q", os.Args[3])
		}
		calls = n
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedConfigProfile(profile),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		fail("config: %v", err)
	}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.EndpointResolver = sts.EndpointResolverFromURL(endpoint)
	})
	enc := json.NewEncoder(os.Stdout)
	for i := 0; i < calls; i++ {
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			fail("GetCallerIdentity (call %d): %v", i+1, err)
		}
		if err := enc.Encode(map[string]string{"Arn": aws.ToString(out.Arn)}); err != nil {
			fail("stdout: %v", err)
		}
	}
}
