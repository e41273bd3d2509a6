// A real consumer of credential_process: the AWS SDK for Go v1 (Debian golang-github-aws-aws-sdk-go-dev).
//
//	caller-identity-v1 PROFILE STS_URL [CALLS]
//
// Loads the shared config for PROFILE (so its credential_process resolves the credentials), makes
// ONE STS client with the endpoint set here (this SDK reads no endpoint from the profile), calls
// GetCallerIdentity CALLS times (default 2) on it and prints one JSON line {"Arn": ...} per call.
// Built offline in GOPATH mode: GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/sts"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "caller-identity-v1: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		fmt.Fprintln(os.Stderr, "usage: caller-identity-v1 PROFILE STS_URL [CALLS]")
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
	sess, err := session.NewSessionWithOptions(session.Options{
		Profile:           profile,
		SharedConfigState: session.SharedConfigEnable, // read ~/.aws/config, as AWS_SDK_LOAD_CONFIG=1 does
		Config:            aws.Config{MaxRetries: aws.Int(0)},
	})
	if err != nil {
		fail("session: %v", err)
	}
	client := sts.New(sess, &aws.Config{Endpoint: aws.String(endpoint)})
	enc := json.NewEncoder(os.Stdout)
	for i := 0; i < calls; i++ {
		out, err := client.GetCallerIdentity(&sts.GetCallerIdentityInput{})
		if err != nil {
			fail("GetCallerIdentity (call %d): %v", i+1, err)
		}
		if err := enc.Encode(map[string]string{"Arn": aws.StringValue(out.Arn)}); err != nil {
			fail("stdout: %v", err)
		}
	}
}
